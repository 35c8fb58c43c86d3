"""A recorded port taken between runs, and stale or corrupt state files."""

from __future__ import annotations

import json
import os
import socket
import time

import httpx
import pytest

from ops.procs import free_port
from tests.support.db import sql
from tests.support.output import report, step_lines
from tests.support.procs import dead_pid, postmasters, uvicorn_pids
from tests.support.project import read_state

pytestmark = pytest.mark.e2e


def test_recorded_db_port_taken_between_runs_moves_to_a_new_port(project):
    """`up`, `down`, someone listens on the db port, `up`: a new port, recorded, /health 200."""
    assert project.invoke("up").returncode == 0
    old_port = read_state(project)["db"]["port"]
    assert project.invoke("down").returncode == 0

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        started = time.monotonic()
        result = project.invoke("up")
        report("db port squatted", time.monotonic() - started, exit=result.returncode)
        assert result.returncode == 0, result.stderr
        new_port = read_state(project)["db"]["port"]
        assert new_port != old_port
        assert f"127.0.0.1:{new_port}" in result.stdout
        state = read_state(project)
        response = httpx.get(f"{state['api']['url']}/health", trust_env=False, timeout=5)
        assert response.status_code == 200, response.text
    assert project.invoke("status").returncode == 0


def test_stale_state_with_dead_pids_is_ignored_and_up_works(project):
    """A state file naming dead api and db pids (and a dead port) does not stop `up`."""
    stale = {
        "version": 1,
        "stack": "homer",
        "db": {"backend": "embedded", "pid": dead_pid(), "port": free_port(), "password": "stale-pw"},
        "api": {"pid": dead_pid(), "url": "http://127.0.0.1:1"},
        "steps": [],
    }
    project.state_file.parent.mkdir(parents=True, exist_ok=True)
    project.state_file.write_text(json.dumps(stale))
    os.chmod(project.state_file, 0o600)

    started = time.monotonic()
    result = project.invoke("up")
    report("stale state, dead pids", time.monotonic() - started, exit=result.returncode)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    state = read_state(project)
    assert state["api"]["pid"] != stale["api"]["pid"] and state["api"]["pid"] in uvicorn_pids(project)
    assert state["db"]["pid"] in postmasters(project)
    assert project.invoke("status").returncode == 0


def test_truncated_state_is_set_aside_as_bad_and_up_works_with_data(project):
    """A state file cut mid-JSON: a warning, `.json.bad` kept, `up` works, the data is still there."""
    assert project.invoke("up").returncode == 0
    sql(project, "CREATE TABLE keepsake (n int)")
    sql(project, "INSERT INTO keepsake VALUES (7)")
    assert project.invoke("down").returncode == 0
    text = project.state_file.read_text()
    project.state_file.write_text(text[: len(text) // 2])

    started = time.monotonic()
    result = project.invoke("up")
    report("truncated state", time.monotonic() - started, exit=result.returncode)

    assert result.returncode == 0, result.stderr
    assert "set aside" in result.stderr and "Traceback" not in result.stderr
    bad = project.state_file.with_suffix(".json.bad")
    assert bad.exists() and bad.read_text() == text[: len(text) // 2]
    assert step_lines(result.stdout)["api-health"] == "OK"
    assert sql(project, "SELECT n FROM keepsake") == [(7,)]
    assert project.invoke("status").returncode == 0
