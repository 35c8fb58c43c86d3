"""`invoke diagnose --bundle`: one redacted .tar.gz in every state diagnose handles (never started, a
corrupt state file, the API down, the database down, everything up), and a bad PATH is one line."""

from __future__ import annotations

import json
import stat

import pytest

from ops.procs import pid_alive
from tests.support.bundle import FIXED, Written, bundle, leaks
from tests.support.procs import kill_quietly, wait_for
from tests.support.project import Project, read_state

pytestmark = pytest.mark.e2e


def complete(written: Written, *logs: str) -> None:
    assert set(written.members) >= {*FIXED, *(f"logs/{name}" for name in logs)}, sorted(written.members)
    assert written.modes == {0o600} and stat.S_IMODE(written.path.stat().st_mode) == 0o600
    report = json.loads(written.members["diagnosis.json"])
    assert report["exit_code"] == written.code
    assert f"verdict    {report['verdict']} (exit {written.code}" in written.members["diagnosis.txt"]
    assert (
        "python " in written.members["versions.txt"]
        and "prometheus-client" in written.members["versions.txt"]
    )


def kill(pid: int) -> None:
    kill_quietly(pid)
    wait_for(lambda: not pid_alive(pid), timeout=10)


def test_never_started_and_bad_paths(project: Project, tmp_path):
    written = bundle(project)
    assert written.code == 2 and written.path.parent == project.root
    assert written.path.name.startswith("homer-diagnose-homer-")
    complete(written)
    assert "no state file" in written.members["state.json"]
    assert written.members["metrics.txt"] == "(no /metrics scrape: not read: the API does not answer)\n"
    into = bundle(project, str(tmp_path))  # a directory: the default name inside it
    assert into.path.parent == tmp_path and into.code == 2
    named = bundle(project, "ticket.tar.gz")
    assert named.path == project.root / "ticket.tar.gz"
    a_file = tmp_path / "plain"
    a_file.write_text("")
    for bad in (str(tmp_path / "no" / "such" / "b.tar.gz"), str(a_file / "b.tar.gz"), "/proc/b.tar.gz"):
        result = project.invoke("diagnose", "--bundle", bad, timeout=60)
        assert result.returncode == 2 and result.stdout == "", (bad, result.stdout)
        assert (
            result.stderr.startswith("error: cannot write the bundle to ")
            and "Traceback" not in result.stderr
        )
        assert len(result.stderr.strip().splitlines()) == 1


def test_every_state_of_a_live_stack_is_bundled_redacted(project: Project):
    assert project.invoke("up").returncode == 0
    state = read_state(project)
    secrets = [state["db"]["password"], state["db"]["reader_password"]]
    assert all(secret in project.state_file.read_text() for secret in secrets)  # the grep can fail
    with open(project.root / ".ops" / "logs" / "api.log", "a") as log:  # as a careless line would
        log.write(f"connect postgresql://homer:{secrets[0]}@127.0.0.1/homer reader {secrets[1]}\n")

    up = bundle(project)
    print(up.summary)  # the figures of the note: files, size, time
    assert up.code == 0 and leaks(up, secrets) == []
    complete(up, "api.log", "db.log")
    assert "postgresql://homer:***@127.0.0.1/homer reader ***" in up.members["logs/api.log"]
    steps = json.loads(up.members["steps.json"])
    assert steps["last_command"] == "up" and {"db", "api-health"} <= {s["name"] for s in steps["steps"]}
    scraped = up.members["metrics.txt"]
    assert "homer_http_requests_total" in scraped or "no /metrics (404)" in scraped

    kill(state["api"]["pid"])
    api_down = bundle(project)
    assert api_down.code == 1 and leaks(api_down, secrets) == []
    complete(api_down, "api.log", "db.log")

    assert project.invoke("up").returncode == 0
    state = read_state(project)
    kill(state["db"]["pid"])
    db_down = bundle(project)
    assert db_down.code == 1 and leaks(db_down, secrets) == []
    complete(db_down, "api.log", "db.log")

    raw = project.state_file.read_text()
    project.state_file.write_text(raw[: raw.index('"steps"')])  # cut short: the passwords still in it
    corrupt = bundle(project)
    assert json.loads(corrupt.members["diagnosis.json"])["state"] == "corrupt"
    assert corrupt.code in (1, 2) and leaks(corrupt, secrets) == []
    complete(corrupt, "api.log", "db.log")
    assert "state file unusable" in json.loads(corrupt.members["steps.json"])["note"]
