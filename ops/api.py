"""uvicorn as a child process that outlives `invoke up`: log file, health wait, stop.

The child's stdout and stderr go to `.ops/logs/api.log` (the previous log is kept as
api.log.1). The health wait polls GET /health quickly and ends at once, with the exit
code and the log's last lines, if the child dies first: nobody waits on the dead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from ops.errors import ApiError, PortInUse
from ops.procs import cmdline, pid_alive, port_free, tail, terminate
from ops.settings import Settings
from ops.waiting import NotReady, WaitPolicy, retry_call

_children: list[subprocess.Popen[bytes]] = []  # kept so that exit codes can be read


@dataclass(frozen=True)
class Health:
    status: int | None  # HTTP status, None when nothing answered
    body: str


def log_path(settings: Settings) -> Path:
    return settings.logs_dir / "api.log"


def probe(url: str, timeout: float = 1.0) -> Health:
    """GET {url}/health once, never raising."""
    try:
        with httpx.Client(trust_env=False, timeout=timeout) as client:
            response = client.get(f"{url}/health")
        return Health(response.status_code, response.text[:500])
    except httpx.HTTPError as exc:
        return Health(None, type(exc).__name__)


def is_ours(pid: int | None, settings: Settings) -> bool:
    """True if `pid` is alive and is a uvicorn of this project's app (whatever its port)."""
    if not pid or not pid_alive(pid):
        return False
    line = cmdline(pid)
    try:
        cwd = Path(f"/proc/{pid}/cwd").resolve()
    except OSError:
        return False
    return "uvicorn" in line and settings.app in line and cwd == settings.project_dir


def start(settings: Settings, database_url: str) -> int:
    """Spawn uvicorn in its own session; return its pid. Raises PortInUse if the port is held."""
    if settings.api_port and not port_free(settings.api_host, settings.api_port):
        raise PortInUse(
            f"port {settings.api_host}:{settings.api_port} for the API is in use by another process",
            "stop it, or choose another port with --api-port / OPS_API_PORT",
        )
    log = log_path(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    if log.exists() and log.stat().st_size:
        log.replace(log.with_name("api.log.1"))
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    argv = [
        sys.executable, "-m", "uvicorn", settings.app,
        "--host", settings.api_host, "--port", str(settings.api_port),
    ]  # fmt: skip
    with open(log, "ab") as out:
        child = subprocess.Popen(
            argv,
            cwd=settings.project_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children.append(child)
    return child.pid


def wait_healthy(settings: Settings, pid: int, policy: WaitPolicy) -> tuple[Health, int]:
    """Poll /health until 200; fail at once if the child exits. Returns (health, attempts)."""
    last = Health(None, "no answer yet")

    def alive() -> None:
        code = exit_code(pid)
        if code is not None or not pid_alive(pid):
            raise ApiError(
                f"uvicorn exited{'' if code is None else f' with code {code}'} before /health answered",
                f"see {log_path(settings)}",
                evidence=tail(log_path(settings), settings.log_tail_lines),
            )

    def poll() -> Health:
        nonlocal last
        last = probe(settings.api_url)
        if last.status != 200:
            raise NotReady(last.body)
        return last

    try:
        return retry_call(poll, policy, alive)
    except NotReady:
        raise ApiError(
            f"/health did not answer 200 within {policy.timeout:.0f} s (last: {last.status} {last.body})",
            f"see {log_path(settings)}",
            evidence=tail(log_path(settings), settings.log_tail_lines),
        ) from None


def exit_code(pid: int) -> int | None:
    """The exit code of a child we spawned in this process, if it has exited."""
    for child in _children:
        if child.pid == pid:
            return child.poll()
    return None


def stop(pid: int | None, grace: float = 5.0) -> bool:
    """Stop the API process group; True if something was running."""
    if not pid:
        return False
    ours = next((child for child in _children if child.pid == pid), None)
    if ours is None:
        return terminate(int(pid), grace)
    _children.remove(ours)
    if ours.poll() is not None:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(ours.pid, sig)
        try:
            ours.wait(timeout=grace)  # reaps it: no zombie, no exit-time warning
            return True
        except subprocess.TimeoutExpired:
            continue
    return False
