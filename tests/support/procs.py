"""The processes of a project copy, read from /proc: its uvicorns and postmasters; pids; polling."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.project import Project, data_dir


def postmaster_pid(project: Project) -> int | None:
    try:
        first = (data_dir(project) / "postmaster.pid").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(first) if first.strip().isdigit() else None


def _cmdlines() -> dict[int, str]:
    lines = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
    return lines


def _cwd(pid: int) -> Path | None:
    try:
        return Path(f"/proc/{pid}/cwd").resolve()
    except OSError:
        return None


def uvicorn_pids(project: Project) -> list[int]:
    """Live uvicorn processes running in this project copy (zombies excluded)."""
    return [
        pid
        for pid, line in _cmdlines().items()
        if "uvicorn" in line and _cwd(pid) == project.root and not _zombie(pid)
    ]


def postmasters(project: Project) -> list[int]:
    """Postmasters serving this copy's data directory.

    Not the `sh -c` wrappers of pg_ctl and initdb, not initdb's own `--boot`/`--single` backends
    (they name the same directory without serving it), and not a postmaster's child in the
    instant after fork, before it retitles itself `postgres: ...` (its parent is a postmaster).
    """
    marker = f"-D {data_dir(project)}"
    found = [
        pid
        for pid, line in _cmdlines().items()
        if marker in line
        and line.split(" ", 1)[0].endswith("/postgres")
        and not any(flag in line.split() for flag in ("--boot", "--single"))
        and not _zombie(pid)
    ]
    return [pid for pid in found if _parent(pid) not in found]


def _parent(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), None)


def process_line(pid: int) -> str:
    """`pid`'s command line and its parent's, for a failure message."""
    parent = _parent(pid)
    lines = _cmdlines()
    return f"{lines.get(pid, '(gone)')} (parent {parent}: {lines.get(parent or -1, '?')})"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


def dead_pid() -> int:
    """A pid that has just exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def kill_quietly(pid: int | None, sig: int = signal.SIGKILL) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 60,
    every: float = 0.02,
    what: str | None = None,
    seen: Callable[[], str] | None = None,
) -> Any:
    """The tests' one poll: `predicate()` every `every` s until it returns something truthy (returned);
    after `timeout` s an AssertionError naming `what`, the last value and `seen()` (a screen, output)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    shown = f"\n--- what was seen ---\n{seen()}" if seen is not None else ""
    waited = what or predicate
    raise AssertionError(f"timed out after {timeout} s waiting for {waited} (last: {last!r}){shown}")
