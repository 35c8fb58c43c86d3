"""uvicorn killed after start, and an app that crashes at import."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.support.output import one_line_error, report, step_lines
from tests.support.procs import uvicorn_pids
from tests.support.project import read_state

pytestmark = pytest.mark.e2e


def test_api_killed_is_reported_by_status_and_healed_by_up(project):
    """kill -9 of the API pid: `status` exit 1 naming api; `up` restarts only the API."""
    assert project.invoke("up").returncode == 0
    pid = read_state(project)["api"]["pid"]
    os.kill(pid, signal.SIGKILL)

    killed_at = time.monotonic()
    status = project.invoke("status")
    report("api kill -9, then status", time.monotonic() - killed_at, exit=status.returncode)

    assert status.returncode == 1
    api_line = next(line for line in status.stdout.splitlines() if line.startswith("api"))
    assert "unhealthy" in api_line and "not running" in api_line
    db_line = next(line for line in status.stdout.splitlines() if line.startswith("db"))
    assert "unhealthy" not in db_line

    healed = project.invoke("up")
    assert healed.returncode == 0, healed.stderr
    assert step_lines(healed.stdout)["db"] == "SKIP" and step_lines(healed.stdout)["api-start"] == "OK"
    assert read_state(project)["api"]["pid"] != pid
    assert project.invoke("status").returncode == 0


def test_app_crashing_at_import_fails_up_with_6_and_its_error(project):
    """`raise RuntimeError` at import: exit 6 at once, the error in stderr, no uvicorn left."""
    (project.root / "app" / "main.py").write_text('raise RuntimeError("boom at import")\n')
    result = project.invoke("up", timeout=90)
    health = next(step for step in read_state(project)["steps"] if step["name"] == "api-health")
    report("app raises at import", health["duration_s"], exit=result.returncode)

    assert result.returncode == 6, result.stderr
    assert "boom at import" in result.stderr
    assert one_line_error(result.stderr)
    assert step_lines(result.stdout)["api-health"] == "FAIL"
    assert uvicorn_pids(project) == []
