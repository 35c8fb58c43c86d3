"""Declared processes (`kind = "process"` in stack.toml): start, readiness, stop, fingerprint.

A process runs in the project directory with `python` as this interpreter, its command and
env with the stack's endpoints substituted (`{db.url}`, `{api.url}`, ...), its output in
`.ops/logs/<name>.log` and the stack's marks in its environment. It is ready when its probe
passes (an HTTP 2xx, a TCP connect, a line of its log, a command exiting 0; none: once
started); a process that exits while waited on ends the wait at once with its log's tail.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from ops import children
from ops.errors import ProcessFailed
from ops.fingerprint import Fingerprint, take
from ops.procs import pid_alive, tail
from ops.scope import mark_of
from ops.settings import Settings
from ops.stackfile import PLACEHOLDER, Process, Ready
from ops.state import ProcessRecord
from ops.waiting import NotReady, WaitPolicy, retry_call


def log_path(settings: Settings, name: str) -> Path:
    return settings.log_file(name)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """`text` with each `{component.attribute}` replaced (the stack file validated the names)."""
    return PLACEHOLDER.sub(lambda m: values.get(f"{m[1]}.{m[2]}", m[0]), text)


def argv_of(declared: Process, values: Mapping[str, str]) -> list[str]:
    argv = [substitute(arg, values) for arg in declared.command]
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # this project's interpreter, with its packages
    return argv


def fingerprint(
    settings: Settings, name: str, declared: Process, previous: ProcessRecord | None
) -> Fingerprint:
    """The process's declaration and the content of its sources (its command's files, or `sources`)."""
    sources = sources_of(settings, declared)
    before = Fingerprint.from_record(previous.fingerprint) if previous else None
    return take(settings.project_dir, {"component": declared.model_dump(mode="json")}, sources, before)


def sources_of(settings: Settings, declared: Process) -> tuple[str, ...]:
    """What a process depends on: its `sources`, else the files its command names."""
    return declared.sources or tuple(
        arg for arg in declared.command if (settings.project_dir / arg).is_file()
    )


def is_ours(settings: Settings, name: str, pid: int | None) -> bool:
    mark = mark_of(pid) if pid and pid_alive(pid) else None
    return mark is not None and mark.belongs_to(settings) and mark.component == name


def start(settings: Settings, name: str, declared: Process, values: Mapping[str, str]) -> int:
    env = {key: substitute(value, values) for key, value in declared.env.items()}
    try:
        return children.spawn(settings, name, argv_of(declared, values), env, log_path(settings, name))
    except OSError as exc:
        raise ProcessFailed(
            f"{name}: cannot start {declared.command[0]!r}: {exc.strerror}", "fix its command"
        ) from None


def wait_ready(
    settings: Settings,
    name: str,
    pid: int,
    ready: Ready | None,
    policy: WaitPolicy,
    values: Mapping[str, str],
) -> tuple[str, int]:
    """Wait for the probe; fail at once if the process exits. Returns (detail, attempts)."""
    log = log_path(settings, name)
    offset = 0

    def alive() -> None:
        code = children.exit_code(pid)
        if code is not None or not pid_alive(pid):
            raise ProcessFailed(
                f"{name} exited{'' if code is None else f' with code {code}'} before it was ready",
                f"see {log}",
                evidence=tail(log, settings.log_tail_lines),
            )

    if ready is None:
        alive()
        return "started (no readiness probe)", 1

    def poll() -> str:
        nonlocal offset
        if ready.log is not None:
            offset, found = _log_match(log, offset, ready.log)
            if found:
                return f"log line matched {ready.log!r}: {found.strip()[:80]}"
            raise NotReady("no matching log line yet")
        if ready.http is not None:
            return _http_ready(substitute(ready.http, values))
        if ready.tcp is not None:
            return _tcp_ready(ready.tcp)
        assert ready.command is not None  # the model allows exactly one probe
        return _command_ready(list(ready.command), settings.project_dir)

    bounded = WaitPolicy(
        policy.attempts, min(policy.timeout, ready.timeout), policy.wait_initial, policy.wait_max
    )
    try:
        return retry_call(poll, bounded, alive)
    except NotReady as exc:
        raise ProcessFailed(
            f"{name} was not ready within {bounded.timeout:.0f} s ({exc})",
            f"see {log}",
            evidence=tail(log, settings.log_tail_lines),
        ) from None


def _http_ready(url: str) -> str:
    import httpx  # only for an http probe: not on every `up`'s path

    try:
        status = httpx.get(url, timeout=1.0, trust_env=False).status_code
    except httpx.HTTPError as exc:
        raise NotReady(type(exc).__name__) from None
    if 200 <= status < 300:
        return f"GET {url} -> {status}"
    raise NotReady(f"HTTP {status}")


def _tcp_ready(address: str) -> str:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1.0).close()
    except OSError as exc:
        raise NotReady(str(exc)) from None
    return f"{address} accepts connections"


def _command_ready(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, check=False)
    if done.returncode == 0:
        return f"{' '.join(command)} exited 0"
    raise NotReady(f"exit code {done.returncode}")


def _log_match(log: Path, offset: int, pattern: str) -> tuple[int, str | None]:
    """Scan the complete lines the log gained since byte `offset` for one matching `pattern`."""
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return offset, None
    end = data.rfind(b"\n")
    if end < 0:
        return offset, None
    for raw in data[:end].split(b"\n"):
        line = raw.decode("utf-8", errors="replace")
        if re.search(pattern, line):
            return offset + end + 1, line
    return offset + end + 1, None
