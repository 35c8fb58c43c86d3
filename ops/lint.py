"""`invoke lint`: the checks that hold the code's style and types, run the same everywhere
(`.ci/run`, the GitHub workflow, pre-commit)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ops.steps import Emit

# name, arguments after `python -m`; with --fix, ruff fixes and formats first
CHECKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ruff check", ("ruff", "check", ".")),
    ("ruff format", ("ruff", "format", "--check", ".")),
    ("mypy", ("mypy",)),
)
FIXES: tuple[tuple[str, ...], ...] = (("ruff", "check", "--fix", "."), ("ruff", "format", "."))

Runner = Callable[[list[str], Path], int]


def _run(argv: list[str], cwd: Path) -> int:
    return subprocess.run(argv, cwd=cwd, check=False).returncode


def lint(project_dir: Path, fix: bool = False, emit: Emit = print, run: Runner = _run) -> list[str]:
    """Run every check (each one, even after a failure); return the names of those that failed."""
    python = [sys.executable, "-m"]
    if fix:
        for argv in FIXES:
            run([*python, *argv], project_dir)
    failed = []
    for name, argv in CHECKS:
        if run([*python, *argv], project_dir) != 0:
            failed.append(name)
    emit(
        f"lint: {', '.join(failed)} found something"
        if failed
        else "lint: ruff, ruff format and mypy are clean"
    )
    return failed
