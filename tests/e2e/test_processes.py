"""A process declared in stack.toml: started after `migrate`, shown by status, diagnose and logs,
restarted when its file changes, stopped when removed from the file."""

from __future__ import annotations

import json

import psutil
import pytest

from ops.procs import pid_alive
from tests.support.output import step_lines
from tests.support.project import plan_of, read_state
from tests.support.sources import DECLARED, WORKER

pytestmark = pytest.mark.e2e


def test_a_declared_worker_is_started_shown_restarted_and_stopped(project):
    (project.root / "worker.py").write_text(WORKER.replace("{VERSION}", "one"))
    stack_file = project.root / "stack.toml"
    original = stack_file.read_text()
    stack_file.write_text(original + DECLARED)
    assert plan_of(project)["worker"] == "start — new in the stack file"

    up = project.invoke("up")
    assert up.returncode == 0, up.stdout + up.stderr
    steps = list(step_lines(up.stdout))
    assert steps.index("worker") > steps.index("migrate")
    pid = read_state(project)["processes"]["worker"]["pid"]
    assert pid_alive(pid)

    status = project.invoke("status")
    assert status.returncode == 0 and f"worker healthy   pid {pid} running" in status.stdout
    report = json.loads(project.invoke("diagnose", "--json").stdout)
    assert report["processes"]["worker"]["running"] is True and report["healthy"]
    logs = project.invoke("logs", "-c", "worker")
    assert "connected to homer (one)" in logs.stdout and "ready" in logs.stdout
    assert "postgresql://" not in logs.stdout  # nothing leaked through the DSN it was given

    (project.root / "worker.py").write_text(WORKER.replace("{VERSION}", "two"))
    assert plan_of(project)["worker"] == f"restart — worker.py changed since pid {pid} started"
    assert project.invoke("up").returncode == 0
    second = read_state(project)["processes"]["worker"]["pid"]
    assert second != pid and not pid_alive(pid) and pid_alive(second)
    assert "connected to homer (two)" in project.invoke("logs", "-c", "worker").stdout
    assert plan_of(project)["worker"] == f"keep — pid {second} running"

    stack_file.write_text(original)
    assert plan_of(project)["worker"] == "stop — removed from the stack file"
    removed = project.invoke("up")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not pid_alive(second) and "worker" not in read_state(project)["processes"]


def test_a_worker_that_dies_before_ready_fails_up_at_once_with_its_log(project):
    (project.root / "worker.py").write_text(
        "import sys\nprint('no database for me', flush=True)\nsys.exit(3)\n"
    )
    (project.root / "stack.toml").write_text((project.root / "stack.toml").read_text() + DECLARED)
    up = project.invoke("up")
    assert up.returncode == 11, up.stdout + up.stderr
    assert "no database for me" in up.stderr
    assert (
        up.stderr.strip().splitlines()[-1].startswith("error: worker exited with code 3 before it was ready")
    )


def test_the_api_gets_the_env_the_stack_file_declares_for_it(project):
    stack_file = project.root / "stack.toml"
    declared = 'env = { HOMER_NOTE = "db on {db.port}", HOMER_SELF = "{api.url}" }\n'
    original = stack_file.read_text()
    stack_file.write_text(original.replace('health = "/health"\n', f'health = "/health"\n{declared}', 1))
    up = project.invoke("up")
    assert up.returncode == 0, up.stdout + up.stderr
    state = read_state(project)
    environ = psutil.Process(state["api"]["pid"]).environ()
    assert environ["HOMER_NOTE"] == f"db on {state['db']['port']}"
    assert environ["HOMER_SELF"] == state["api"]["url"]
    assert environ["DATABASE_URL"].startswith("postgresql")  # the harness's own, not the file's

    stack_file.write_text(original)
    assert plan_of(project)["api"].startswith("restart"), plan_of(project)
    assert project.invoke("up").returncode == 0
    assert "HOMER_NOTE" not in psutil.Process(read_state(project)["api"]["pid"]).environ()
