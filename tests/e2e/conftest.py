"""End-to-end: the invoke commands as a user types them, in a temporary copy of the project."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ops.procs import free_port
from tests.helpers import PROJECT_DIR

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
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

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


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    copy = copy_project(tmp_path / "project")
    yield copy
    close_project(copy)


@pytest.fixture
def ci_project(project: Project, tmp_path: Path) -> Project:
    """The project for `invoke ci`, with no GitHub Actions variables from an outer CI run leaking in
    (and where test_ci's suites write what they saw)."""
    for key in [key for key in project.env if key.startswith("GITHUB_")]:
        project.env.pop(key)
    project.env["SECRET_OUT"] = str(tmp_path / "secret.txt")
    project.env["READY_OUT"] = str(tmp_path / "ready.txt")
    return project
