"""`invoke ...` run as a user types it: this interpreter's invoke, in a project directory, output captured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def invoke_argv(*args: str) -> list[str]:
    """The command line of `invoke ARGS` under this interpreter (for a `Popen` of one's own)."""
    return [sys.executable, "-m", "invoke", *args]


def run_invoke(
    project: Path, env: dict[str, str] | None, *args: str, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `invoke ARGS` in `project` with `env`; stdout and stderr captured as text, never raising
    on the exit status (TimeoutExpired after `timeout` s, when one is given)."""
    return subprocess.run(
        invoke_argv(*args), cwd=project, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
