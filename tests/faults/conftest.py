"""Shared helpers for the fault-injection tests: real processes, real PostgreSQL, no mocks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Project, project  # the fixture, reused as is
from tests.helpers import query, step_lines

__all__ = ["project", "step_lines"]


def read_state(project: Project) -> dict[str, Any]:
    return json.loads(project.state_file.read_text())


def db_url(state: dict[str, Any]) -> str:
    db = state["db"]
    return f"postgresql://{db['user']}:{db['password']}@127.0.0.1:{db['port']}/{db['database']}"


def sql(project: Project, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement as the app's role, with the credentials from the state file."""
    return query(db_url(read_state(project)), statement)


def data_dir(project: Project) -> Path:
    return project.root / ".ops" / "pgdata"


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


def wait_for(predicate: Callable[[], Any], timeout: float = 60, every: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")


@dataclass
class Running:
    """An `invoke ...` started in the background, in its own process group, output in files."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def signal_group(self, sig: int) -> None:
        """Like a terminal delivering Ctrl-C: to the whole foreground process group."""
        os.killpg(self.process.pid, sig)

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout=timeout)


def spawn(project: Project, *args: str, name: str = "run") -> Running:
    out = project.root.parent / f"{name}.out"
    err = project.root.parent / f"{name}.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "invoke", *args],
            cwd=project.root,
            env={**project.env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    project.background.append(process)
    return Running(process, out, err)


def report(fault: str, seconds: float, **facts: Any) -> None:
    """Print how fast a fault was noticed (run pytest with -s to see it); never asserted."""
    extra = " ".join(f"{key}={value}" for key, value in facts.items())
    print(f"\n[fault] {fault}: noticed in {seconds:.2f} s {extra}".rstrip())


EVIDENCE_START, EVIDENCE_END = "---- last log lines ----", "------------------------"


def one_line_error(stderr: str) -> bool:
    """The documented failure shape: the last line `error: ...`, and no traceback of the harness.

    A dead process's log tail (which may hold *its* traceback) may come first, between the
    evidence markers.
    """
    own = stderr
    if EVIDENCE_START in own:
        before, _, rest = own.partition(EVIDENCE_START)
        own = before + rest.partition(EVIDENCE_END)[2]
    lines = own.strip().splitlines()
    return "Traceback" not in own and bool(lines) and lines[-1].startswith("error: ")


def kill_quietly(pid: int | None, sig: int = signal.SIGKILL) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
