"""pytest's view of a project: the test ids it collects and their names in JUnit XML."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def collected_ids(root: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """The test ids `pytest --collect-only -q ARGS` finds in the project at `root` (in a subprocess)."""
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args]
    found = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert found.returncode == 0, found.stdout + found.stderr
    return [line for line in found.stdout.splitlines() if "::" in line]


def junit_id(nodeid: str) -> str:
    """The `classname::name` pytest's JUnit XML gives a test id: tests/a/test_b.py::T::t[x] is
    tests.a.test_b.T::t[x] (as ops.junit.case_ids reads it back)."""
    path, bracket, params = nodeid.partition("[")  # as _pytest.junitxml.mangle_test_address
    names = path.split("::")
    names[0] = names[0].removesuffix(".py").replace("/", ".")
    return f"{'.'.join(names[:-1])}::{names[-1]}{bracket}{params}"
