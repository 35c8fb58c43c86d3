"""A temporary copy of the project, as the e2e and fault tests drive it: its env, its state file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.procs import free_port
from tests.support import invoke
from tests.support.paths import PROJECT_DIR

IGNORED = shutil.ignore_patterns(
    ".venv", ".ops", ".git", "artifacts", "__pycache__", ".*_cache", "*.egg-info", "tests"
)


@dataclass
class Project:
    """A copy of the project and a way to run `invoke ...` in it."""

    root: Path
    env: dict[str, str]
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)  # see tests/faults

    def invoke(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return invoke.run(self.root, self.env, *args, timeout=timeout)

    @property
    def state_file(self) -> Path:
        return self.root / ".ops" / "state.json"


def copy_project(root: Path) -> Project:
    """A copy of the project at `root` (embedded backend, free API port, no seed, no inherited settings)."""
    shutil.copytree(PROJECT_DIR, root, ignore=IGNORED)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPS_", "INVOKE_"))}
    env.pop("DATABASE_URL", None)
    env.update(OPS_API_PORT=str(free_port()), OPS_BACKEND="embedded", OPS_SEED="false")
    return Project(root, env)


def close_project(copy: Project, *down_flags: str) -> None:
    """Kill what a failed test left running, then `invoke down`."""
    for process in copy.background:  # a command a failed test left running would outlive `down`
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    copy.invoke("down", *down_flags)


def read_state(project: Project) -> dict[str, Any]:
    return json.loads(project.state_file.read_text())


def data_dir(project: Project) -> Path:
    return project.root / ".ops" / "pgdata"


def plan_of(project: Project) -> dict[str, str]:
    """`up --plan`'s lines as {component: what it would do}; asserted to run nothing."""
    result = project.invoke("up", "--plan")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "::STEP::" not in result.stdout  # nothing was run
    return dict(line.split(": ", 1) for line in result.stdout.splitlines())
