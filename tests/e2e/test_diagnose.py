"""`invoke diagnose` in each state of a stack: up, API killed, PostgreSQL killed, down, never started."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from ops.procs import pid_alive
from tests.support.output import in_branch_order

pytestmark = pytest.mark.e2e

UP_STEPS = ["db", "db-ready", "migrate", "api-start", "api-health"]


def diagnose(project, *args: str) -> tuple[int, dict]:
    result = project.invoke("diagnose", "--json", *args, timeout=30)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def kill(pid: int) -> None:
    """kill -9, then wait (bounded) until the kernel shows the process dead."""
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not pid_alive(pid):
            return
        time.sleep(0.05)


def test_never_started_is_exit_2_with_the_stable_keys(project):
    code, report = diagnose(project)
    assert code == 2
    assert report["verdict"] == "not running" and report["healthy"] is False
    assert report["state"] == "missing" and report["steps"] == []
    for key in ("backend", "db", "api", "steps", "problems", "logs", "failed_step"):
        assert key in report
    for key in ("host", "port", "reachable", "schema", "head", "drift"):
        assert key in report["db"]
    for key in ("pid", "alive", "health", "url"):
        assert key in report["api"]
    assert any("never started" in problem for problem in report["problems"])
    table = project.invoke("diagnose", timeout=30)
    assert table.returncode == 2 and "verdict    not running" in table.stdout


def test_up_then_api_killed_then_postgres_killed_then_nothing(project):
    assert project.invoke("up").returncode == 0
    state = json.loads(project.state_file.read_text())
    password = state["db"]["password"]

    code, report = diagnose(project)
    assert code == 0, report["problems"]
    assert report["healthy"] is True and report["backend"] == "embedded"
    assert report["db"]["host"] == "127.0.0.1" and report["db"]["port"] == state["db"]["port"]
    assert report["db"]["actual_port"] == state["db"]["port"] and report["db"]["drift"] is False
    assert report["db"]["reachable"] is True and report["db"]["schema"] == report["db"]["head"]
    assert set(report["db"]["extensions"]) == {"vector", "pg_trgm"}
    assert report["api"]["pid"] == state["api"]["pid"] and report["api"]["alive"] is True
    assert report["api"]["health"] == 200
    steps = [(step["name"], step["status"]) for step in report["steps"]]
    assert sorted(steps) == sorted((name, "OK") for name in UP_STEPS)
    assert in_branch_order([name for name, _ in steps])
    table = project.invoke("diagnose", timeout=30)
    assert table.returncode == 0 and "verdict    healthy" in table.stdout
    assert password not in table.stdout + json.dumps(report)

    kill(state["api"]["pid"])
    code, report = diagnose(project)
    assert code == 1
    assert report["api"]["alive"] is False and report["db"]["reachable"] is True
    assert any(f"API (pid {state['api']['pid']}) is not running" in p for p in report["problems"])

    healed = project.invoke("up")
    assert healed.returncode == 0, healed.stderr
    state = json.loads(project.state_file.read_text())
    kill(state["db"]["pid"])
    code, report = diagnose(project)
    assert code == 1
    assert report["db"]["running"] is False and report["db"]["reachable"] is False
    assert report["db"]["error"]  # why the app's DSN does not connect
    assert report["api"]["alive"] is True  # its /health no longer answers 200 (a race: not asserted)
    assert any("PostgreSQL (embedded) is not running" in p for p in report["problems"])

    kill(state["api"]["pid"])
    code, report = diagnose(project)
    assert code == 2 and report["verdict"] == "not running"
    assert password not in json.dumps(report)


def test_port_drift_between_the_state_file_and_postgres_is_flagged(project):
    assert project.invoke("up").returncode == 0
    state = json.loads(project.state_file.read_text())
    actual = state["db"]["port"]
    state["db"]["port"] = actual + 1 if actual < 65535 else actual - 1
    project.state_file.write_text(json.dumps(state))
    code, report = diagnose(project)
    assert code == 1
    assert report["db"]["drift"] is True and report["db"]["actual_port"] == actual
    assert any("port drift" in problem for problem in report["problems"])


def test_a_failed_up_shows_the_failing_step_and_its_log_tail(project):
    (project.root / "app" / "main.py").write_text("import no_such_module_xyz\n")
    assert project.invoke("up", timeout=60).returncode == 6
    code, report = diagnose(project)
    assert code == 1  # PostgreSQL runs, the API does not
    failed = report["failed_step"]
    assert failed["name"] == "api-health" and "uvicorn exited" in failed["detail"]
    assert "ModuleNotFoundError" in failed["log_tail"] and failed["log"].endswith("api.log")
    assert report["steps"][-1] == {**report["steps"][-1], "name": "api-health", "status": "FAIL"}
    table = project.invoke("diagnose", timeout=30).stdout
    assert "failed     api-health" in table and "ModuleNotFoundError" in table


def test_a_corrupt_state_file_is_reported_and_left_in_place(project):
    project.state_file.parent.mkdir(parents=True)
    project.state_file.write_text('{"version": 1, "db": {"port": 54')
    code, report = diagnose(project)
    assert code == 2 and report["state"] == "corrupt"
    assert any("state file unusable" in problem for problem in report["problems"])
    assert project.state_file.exists()  # diagnose is read-only: `up` sets it aside, not diagnose


def test_down_is_not_running(project):
    assert project.invoke("up").returncode == 0
    assert project.invoke("down").returncode == 0
    code, report = diagnose(project)
    assert code == 2 and report["verdict"] == "not running"
    assert report["last_command"] == "down"


def test_diagnose_reads_the_live_apis_metrics_request_ids_and_all(project):
    import httpx

    assert project.invoke("up").returncode == 0
    api_url = json.loads(project.state_file.read_text())["api"]["url"]
    with httpx.Client(base_url=api_url, timeout=10, trust_env=False) as client:
        for n in range(6):
            response = client.get("/search", params={"q": "μῆνιν"}, headers={"X-Request-ID": f"ticket-{n}"})
            assert response.status_code == 200 and response.headers["x-request-id"] == f"ticket-{n}"
    code, report = diagnose(project)
    assert code == 0, report["problems"]
    metrics = report["metrics"]
    assert metrics["status"] == 200 and metrics["since_start"]["requests"] >= 6, metrics
    search = next(route for route in metrics["routes"] if route["route"] == "/search GET")
    assert search["requests"] == 6 and search["errors_5xx"] == 0 and search["p99_s"] > 0, search
    time.sleep(1.2)  # a second look within the minute, a second or more later, sees the window
    again = project.invoke("diagnose", timeout=30)
    assert "metrics    last " in again.stdout and "req/s" in again.stdout, again.stdout
    logged = (project.root / ".ops" / "logs" / "api.log").read_text()
    lines = [json.loads(line) for line in logged.splitlines() if '"homer.request"' in line]
    assert {line["request_id"] for line in lines if line["route"] == "/search"} == {
        f"ticket-{n}" for n in range(6)
    }
