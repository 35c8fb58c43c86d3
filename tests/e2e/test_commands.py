"""`invoke up`, `status`, `down` and friends, run in a subprocess as a user would."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess

import pytest

from ops.invoke_cli import invoke_argv
from tests.support.db import query
from tests.support.output import step_lines

pytestmark = pytest.mark.e2e

STEPS = ["db", "db-ready", "migrate", "api-start", "api-health"]


def test_up_status_down_as_a_user_types_them(project):
    first = project.invoke("up")
    assert first.returncode == 0, first.stderr
    assert step_lines(first.stdout) == dict.fromkeys(STEPS, "OK")
    state = json.loads(project.state_file.read_text())
    password = state["db"]["password"]
    port = state["db"]["port"]
    assert stat.S_IMODE(project.state_file.stat().st_mode) == 0o600
    assert f"127.0.0.1:{port}" in first.stdout and "***" in first.stdout
    assert f"http://127.0.0.1:{project.env['OPS_API_PORT']}" in first.stdout

    again = project.invoke("up")
    assert again.returncode == 0
    assert step_lines(again.stdout) == {
        "db": "SKIP", "db-ready": "OK", "migrate": "SKIP", "api-start": "SKIP", "api-health": "OK"
    }  # fmt: skip

    status = project.invoke("status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.count("healthy ") == 2

    logs = project.invoke("logs", "-c", "db", "-n", "5")
    assert logs.returncode == 0 and logs.stdout.strip()
    every_log = project.invoke("logs")  # bare: db and api
    assert every_log.returncode == 0
    assert "api.log <==" in every_log.stdout and "db.log <==" in every_log.stdout
    migrated = project.invoke("migrate")  # bare: to head, already there
    assert migrated.returncode == 0 and "::STEP::migrate::SKIP" in migrated.stdout

    down = project.invoke("down")
    assert down.returncode == 0
    assert project.invoke("status").returncode == 1

    for result in (first, again, status, logs, every_log, migrated, down):
        assert password not in result.stdout + result.stderr
    assert all(password not in p.read_text() for p in (project.root / ".ops" / "logs").glob("*.log"))


def test_kill_9_of_api_then_of_postgres_heals_with_data_intact(project):
    assert project.invoke("up").returncode == 0
    state = json.loads(project.state_file.read_text())
    url = (
        f"postgresql+psycopg://{state['db']['user']}:{state['db']['password']}"
        f"@127.0.0.1:{state['db']['port']}/{state['db']['database']}"
    )
    query(url, "CREATE TABLE keepsake (n int)")
    query(url, "INSERT INTO keepsake VALUES (42)")

    os.kill(state["api"]["pid"], signal.SIGKILL)
    healed = project.invoke("up")
    assert healed.returncode == 0, healed.stderr
    assert step_lines(healed.stdout)["db"] == "SKIP"
    assert step_lines(healed.stdout)["api-start"] == "OK"

    os.kill(state["db"]["pid"], signal.SIGKILL)
    healed = project.invoke("up")
    assert healed.returncode == 0, healed.stderr
    assert step_lines(healed.stdout)["db"] == "OK"
    assert query(url, "SELECT n FROM keepsake") == [(42,)]
    assert project.invoke("status").returncode == 0


def test_app_that_cannot_import_fails_fast_with_its_error(project):
    (project.root / "app" / "main.py").write_text("import no_such_module_xyz\n")
    result = project.invoke("up", timeout=60)
    assert result.returncode == 6
    assert step_lines(result.stdout)["api-health"] == "FAIL"
    assert "No module named 'no_such_module_xyz'" in result.stderr  # the log tail is shown
    assert "ModuleNotFoundError" in result.stderr.split("---- last log lines ----")[1]  # from api.log
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: uvicorn exited with code")
    ledger = json.loads(project.state_file.read_text())["steps"]
    assert ledger[-1]["name"] == "api-health" and ledger[-1]["status"] == "FAIL"


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["up", "--backend", "nope"], {}, 2, "invalid setting backend 'nope'"),
        (["up", "--api-port", "http"], {}, 2, "invalid setting api_port 'http'"),
        (["up", "--backend", "docker"], {"DOCKER_HOST": "unix:///nonexistent.sock"}, 3, "no Docker engine"),
        (["up", "--backend", "external"], {}, 2, "the external backend needs DATABASE_URL"),
        (["up"], {"DATABASE_URL": "postgresql+asyncpg://u:pw@h/db", "OPS_BACKEND": "external"}, 2, "asyncpg"),
        (["logs", "-c", "nope"], {}, 2, "unknown log 'nope'"),
        (["migrate"], {}, 4, "never been started"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_documented_exit_code(project, args, env, code, message):
    project.env.update(env)
    result = project.invoke(*args, timeout=60)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert message in result.stderr


def test_invoke_yaml_is_read_and_env_then_flags_override_it(project):
    (project.root / "invoke.yaml").write_text("ops:\n  backend: fromyaml\n")
    project.env.pop("OPS_BACKEND")
    from_yaml = project.invoke("up", timeout=60)
    assert from_yaml.returncode == 2 and "backend 'fromyaml'" in from_yaml.stderr

    project.env["OPS_BACKEND"] = "fromenv"
    from_env = project.invoke("up", timeout=60)
    assert from_env.returncode == 2 and "backend 'fromenv'" in from_env.stderr

    from_flag = project.invoke("up", "--backend", "fromflag", timeout=60)
    assert from_flag.returncode == 2 and "backend 'fromflag'" in from_flag.stderr

    project.env["OPS_BACKEND"] = "embedded"
    (project.root / "invoke.yaml").write_text("ops:\n  bakend: docker\n")
    typo = project.invoke("status", timeout=60)
    assert typo.returncode == 2 and "unknown setting 'bakend'" in typo.stderr


@pytest.mark.parametrize("buffered", [False, True], ids=["line by line", "block-buffered"])
def test_a_reader_that_leaves_early_does_not_stop_up_halfway(project, buffered):
    """`invoke up | head -1`: the pipe closes after the first line; `up` still brings the stack up,
    exits 0 and prints no traceback (ops/closed_reader.py)."""
    env = {key: value for key, value in project.env.items() if key != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"  # each line reaches the pipe as it is printed
    child = subprocess.Popen(
        invoke_argv("up"), cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None and child.stderr is not None
    if not buffered:
        assert child.stdout.readline().startswith(b"backend:")
    child.stdout.close()  # the reader is gone: whatever `up` prints next hits a closed pipe
    with child.stderr:
        errors = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0, errors
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors
    status = project.invoke("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "schema" in status.stdout and "(head)" in status.stdout
