"""A warm `up` that finds nothing to do, proven without the harness's heavy imports.

A successful `up` leaves the stack as declared, so the next `up` would keep everything unless
something changed since. It leaves a *no-op certificate* beside the state file: a digest of
everything that decides what `up` does (the settings' raw layers, the stack file, the
environment libpq and Docker read, the interpreter, the harness's own files), the size and
mtime of every source file the fingerprints cover, the state file's own stamp, the pid and
start time of every process, and what a no-op prints.

The next `up` first checks the certificate with the standard library and psutil only: the
same inputs, the same files, the state file untouched since (every other command writes it),
each process alive and the same one, and the API's `/health` 200 with the same schema (which
proves the database answers and is at head). Then nothing would be done: `up` says so, prints
the plan (all kept) and the steps (the checks OK, the rest SKIP), and exits. Any difference,
or any doubt, and `up` takes its ordinary path.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.fingerprint import source_files
from ops.health import served_schema
from ops.layout import state_dir_of
from ops.procs import started_at

if TYPE_CHECKING:
    from ops.stack import UpResult

CERTIFICATE = "noop.json"
NOTHING_CHANGED = "up: nothing to do, as checked against the last `up`"
ENV_PREFIXES = ("OPS_", "PG", "DOCKER_", "DATABASE_URL", "READ_DATABASE_URL", "XDG_CACHE_HOME")
HARNESS_DIR = Path(__file__).resolve().parent


def inputs_digest(
    project_dir: Path, config: Mapping[str, Any], env: Mapping[str, str], flags: Mapping[str, Any]
) -> str:
    """Everything that decides what `up` does, before any file under the sources."""
    stack_file = Path(project_dir) / "stack.toml"
    material = {
        "project": str(Path(project_dir).resolve()),
        "config": {key: config[key] for key in sorted(config)},
        "env": {key: value for key, value in sorted(env.items()) if key.startswith(ENV_PREFIXES)},
        "flags": {key: value for key, value in sorted(flags.items()) if value is not None},
        "stack_file": hashlib.sha256(stack_file.read_bytes()).hexdigest() if stack_file.exists() else None,
        "python": sys.executable,
        "harness": _stamps(HARNESS_DIR.parent, ["ops"]),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _stamps(project_dir: Path, sources: Iterable[str]) -> dict[str, list[int]]:
    found = {}
    for path in source_files(project_dir, sources):
        stat = path.stat()
        found[path.relative_to(project_dir).as_posix()] = [stat.st_size, stat.st_mtime_ns]
    return found


def _stamp(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _process(pid: int | None) -> list[float] | None:
    """[pid, start time] of a live process, else None."""
    started = started_at(pid)
    return None if pid is None or started is None else [pid, started]


def write(
    state_dir: Path,
    digest: str,
    project_dir: Path,
    sources: Iterable[str],
    pids: Mapping[str, int | None],
    api_url: str,
    schema: str | None,
    printed: list[str],
) -> None:
    """Leave the certificate of an `up` that changed nothing (best effort: a failure only costs speed)."""
    processes = {name: _process(pid) for name, pid in pids.items()}
    state = _stamp(state_dir / "state.json")
    if any(value is None for value in processes.values()) or state is None:
        return
    record: dict[str, Any] = {
        "inputs": digest,
        "sources": sorted(set(sources)),
        "stamps": _stamps(project_dir, sources),
        "state": state,
        "processes": processes,
        "api_url": api_url,
        "schema": schema,
        "printed": printed,
    }
    target = state_dir / CERTIFICATE
    try:
        temporary = target.with_name(f".{CERTIFICATE}.tmp")
        temporary.write_text(json.dumps(record), encoding="utf-8")
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except OSError:
        return


def forget(state_dir: Path) -> None:
    (Path(state_dir) / CERTIFICATE).unlink(missing_ok=True)


def check(state_dir: Path, digest: str, project_dir: Path) -> list[str] | None:
    """What the certified `up` printed, if nothing has changed since; else None (take the full path)."""
    try:
        record = json.loads((state_dir / CERTIFICATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("inputs") != digest:
        return None
    if record.get("state") != _stamp(state_dir / "state.json"):
        return None  # another command ran since
    if record.get("stamps") != _stamps(project_dir, record.get("sources") or []):
        return None
    for expected in (record.get("processes") or {}).values():
        now = _process(int(expected[0])) if expected else None
        if now is None or abs(now[1] - expected[1]) > 0.01:
            return None
    status, schema = served_schema(str(record.get("api_url")))
    if status != 200 or schema != record.get("schema"):
        return None
    printed = record.get("printed")
    if not isinstance(printed, list):
        return None
    return [
        f"{NOTHING_CHANGED} (the same inputs and files, its processes alive, /health {status})",
        *map(str, printed),
    ]


@dataclass(frozen=True)
class Certificate:
    """The no-op certificate one `up` checks first and renews last: where it lives (the state
    directory the raw settings name) and the digest of the inputs it was asked with."""

    project_dir: Path
    state_dir: Path
    digest: str

    @classmethod
    def of(
        cls, project_dir: Path, config: Mapping[str, Any], env: Mapping[str, str], flags: Mapping[str, Any]
    ) -> Certificate:
        given = flags.get("state_dir") or env.get("OPS_STATE_DIR") or config.get("state_dir")
        digest = inputs_digest(project_dir, config, env, flags)
        return cls(project_dir, state_dir_of(project_dir, given), digest)

    def check(self) -> list[str] | None:
        return check(self.state_dir, self.digest, self.project_dir)

    def renew(self, state_dir: Path, result: UpResult, summary: list[str]) -> None:
        """After an ordinary `up`: the old certificate goes; a new one when the next `up` would keep
        everything and the stack is the one this certificate is for."""
        forget(state_dir)
        if result.certifiable and state_dir == self.state_dir:
            printed = [*result.no_op, *summary]
            sources, pids, url = result.sources, result.pids, result.api_url
            write(self.state_dir, self.digest, self.project_dir, sources, pids, url, result.schema, printed)
