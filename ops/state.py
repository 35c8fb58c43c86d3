"""The stack's resolved truth: one JSON file, mode 0600, written atomically.

It records what was actually bound or started (backend, pid or container, host and
port, the stack's password) and the last command's step ledger. Everything else reads
endpoints from here, never from a guess.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ops.errors import StackBusy
from ops.signals import sigint_held

STATE_VERSION = 1


class StateProblem(Exception):
    """The state file exists but cannot be used (corrupt, half-written, other version)."""


def load_state(path: Path) -> dict[str, Any]:
    """The saved state, or {} when there is none. Raises StateProblem when unusable."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StateProblem(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise StateProblem(f"{path} does not hold a JSON object")
    if data.get("version") != STATE_VERSION:
        raise StateProblem(f"{path} has state version {data.get('version')!r}, not {STATE_VERSION}")
    return data


def load_state_or_fresh(path: Path, warn: Any = None) -> dict[str, Any]:
    """Like load_state, but an unusable file is set aside as <name>.bad and {} returned."""
    try:
        return load_state(path)
    except StateProblem as problem:
        path.replace(path.with_suffix(".json.bad"))
        if warn:
            warn(f"warning: {problem}; set aside as {path.name}.bad, starting from a fresh state")
        return {}


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write `state` atomically (temp file, fsync, rename) with mode 0600.

    A Ctrl-C arriving meanwhile is held until the file is in place: the write is never half
    done, and no lock inside the standard library (tempfile's, once) is left held by it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({**state, "version": STATE_VERSION}, indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(f".state-{os.getpid()}-{secrets.token_hex(6)}.tmp")
    with sigint_held():
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def stack_lock(state_dir: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the stack's exclusive lock; another holder makes this fail clearly (StackBusy).

    An OS lock on `<state_dir>/lock` (flock on POSIX, msvcrt on Windows, via filelock):
    released by the OS when the holder dies, so a crashed command never leaves it held.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    lock_path = state_dir / "lock"
    lock = FileLock(lock_path, timeout=wait_seconds, poll_interval=0.1)
    try:
        lock.acquire()
    except Timeout:
        raise StackBusy(
            f"another harness command is running on this stack ({lock_path})",
            "wait for it to finish, or use another --stack",
        ) from None
    try:
        yield
    finally:
        lock.release()
