"""Helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from ops.procs import free_port
from ops.settings import Settings, build_settings

PROJECT_DIR = Path(__file__).resolve().parent.parent


def stack_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Settings for a throwaway stack: its own state dir, free API port, embedded backend, quick waits."""
    flags: dict[str, Any] = {
        "state_dir": str(state_dir),
        "backend": "embedded",
        "api_port": free_port(),
        "seed": False,
        "db_ready_timeout": 20,
        "api_health_timeout": 20,
    }
    flags.update(overrides)
    return build_settings(PROJECT_DIR, flags=flags)


def docker_names(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[str, str]:
    """The (container, volume) names the docker backend gives a new stack of that checkout."""
    from ops.labels import scoped_names

    return scoped_names(stack, project_dir)


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement as the app's role (URL in SQLAlchemy form) and return its rows."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def step_lines(output: str) -> dict[str, str]:
    """{step: OK|FAIL|SKIP} from the `::STEP::<name>::<status>` lines of a command's stdout."""
    found = {}
    for line in output.splitlines():
        if line.startswith("::STEP::"):
            _, _, name, status = line.split("::")
            found[name] = status
    return found


DB_BRANCH = ("db", "db-ready", "migrate", "seed")
API_BRANCH = ("api-start", "api-health")


def in_branch_order(names: list[str]) -> bool:
    """`up`'s steps keep their order within each branch (the database's, the API's, which run side
    by side), and `api-health` begins only after the database's branch (its last step) began."""
    for branch in (DB_BRANCH, API_BRANCH):
        seen = [name for name in names if name in branch]
        if seen != [name for name in branch if name in seen]:
            return False
    last_db = max((names.index(name) for name in DB_BRANCH if name in names), default=-1)
    return "api-health" not in names or names.index("api-health") > last_db


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
