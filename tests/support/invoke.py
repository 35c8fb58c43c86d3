"""`invoke ...` in a subprocess, as a user types it (built on `ops.invoke_cli`): waited for, or in
the background in a process group of its own with its output in files."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ops.invoke_cli import invoke_argv, run_invoke

if TYPE_CHECKING:
    from tests.support.project import Project


def run(
    root: Path, env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`invoke ARGS` in `root` with exactly `env`, waited for (at most `timeout` s), output captured."""
    return run_invoke(root, env, *args, timeout=timeout)


def start(
    root: Path, env: dict[str, str], *args: str, stdout: IO[bytes], stderr: IO[bytes] | int, **popen: Any
) -> subprocess.Popen[bytes]:
    """`invoke ARGS` in `root` in the background, in a new session (so a process group of its own)."""
    return subprocess.Popen(
        invoke_argv(*args), cwd=root, env=env, stdout=stdout, stderr=stderr, start_new_session=True, **popen
    )


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
    """`invoke ARGS` in the background in `project` (unbuffered, no stdin), killed by its teardown."""
    out = project.root.parent / f"{name}.out"
    err = project.root.parent / f"{name}.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        env = {**project.env, "PYTHONUNBUFFERED": "1"}
        process = start(project.root, env, *args, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
    project.background.append(process)
    return Running(process, out, err)
