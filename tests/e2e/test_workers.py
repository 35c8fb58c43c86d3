"""A scaled-out API: N workers on one port under `up`, `status`, `diagnose`, `dev` and `down`, with a
worker killed for real (SIGKILL of a child of the warm server) and healed by the harness."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import psutil
import pytest

from ops.api_workers import serving
from ops.noop import NOTHING_CHANGED
from ops.procs import pid_alive
from ops.warm_server import available, read_events
from tests.support.dev import DEADLINE_S, start_dev, wait_for
from tests.support.output import step_lines
from tests.support.project import Project, read_state

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not available(), reason="the warm server forks")]


def workers(project: Project) -> list[int]:
    """The serving workers: the pids the warm server's events name that run as its children."""
    supervisor = read_state(project)["api"]["pid"]
    events, _ = read_events(project.root / ".ops" / "logs" / "api.events.jsonl")
    try:
        children = {
            c.pid for c in psutil.Process(supervisor).children() if c.status() != psutil.STATUS_ZOMBIE
        }
    except psutil.NoSuchProcess:
        return []
    return sorted(serving(events) & children)


def declare_workers(project: Project, count: int) -> None:
    stack_file = project.root / "stack.toml"
    text = stack_file.read_text()
    assert "\nworkers = 1\n" in text
    stack_file.write_text(text.replace("\nworkers = 1\n", f"\nworkers = {count}\n"))


def up(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    result = project.invoke("up", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_two_workers_degraded_by_a_kill_are_healed_on_the_same_port_and_all_stopped_by_down(project):
    declare_workers(project, 2)
    first = up(project)
    api = read_state(project)["api"]
    assert (api["workers"], api["server"], api["restart"]) == (2, "warm", "no")
    assert "plan: api: start — not running" in first.stdout
    started = next(step for step in read_state(project)["steps"] if step["name"] == "api-start")
    assert started["detail"].startswith(f"2 workers under pid {api['pid']}")
    supervisor, port, before = api["pid"], api["port"], workers(project)
    assert len(before) == 2 and supervisor not in before

    status = project.invoke("status")
    assert status.returncode == 0 and "/health 200, 2/2 workers" in status.stdout, status.stdout

    os.kill(before[0], signal.SIGKILL)
    wait_for("the kill to be seen", lambda: workers(project) == before[1:])
    degraded = project.invoke("status")
    assert degraded.returncode == 1, degraded.stdout
    line = next(line for line in degraded.stdout.splitlines() if line.startswith("api"))
    assert "unhealthy degraded: 1 of 2 workers running" in line and f"supervisor pid {supervisor}" in line
    assert workers(project) == before[1:]  # --restart no under `up`: the warm server forked none

    healed = up(project)
    assert "plan: api: reload — 1 of 2 workers running" in healed.stdout
    assert step_lines(healed.stdout)["api-start"] == "OK"
    api = read_state(project)["api"]
    assert (api["pid"], api["port"]) == (supervisor, port)  # reloaded in place, on the same port
    after = workers(project)
    assert len(after) == 2 and not set(after) & set(before)  # a new generation of two
    wait_for("the old generation to be retired", lambda: not pid_alive(before[1]), timeout=10)
    status = project.invoke("status")
    assert status.returncode == 0 and "2/2 workers" in status.stdout, status.stdout

    report = json.loads(project.invoke("diagnose", "--json").stdout)
    assert report["verdict"] == "healthy", report["problems"]
    assert report["api"]["pid"] == supervisor and report["api"]["rss_mb"] > 0
    assert report["api"]["workers"]["expected"] == 2
    assert sorted(w["pid"] for w in report["api"]["workers"]["pids"]) == after
    assert all(w["rss_mb"] > 0 for w in report["api"]["workers"]["pids"])

    assert up(project).stdout.startswith(NOTHING_CHANGED)  # whole again: certified
    os.kill(after[1], signal.SIGKILL)
    wait_for("the second kill to be seen", lambda: workers(project) == after[:1])
    again = up(project)  # a dead worker voids the no-op certificate
    assert not again.stdout.startswith(NOTHING_CHANGED)
    assert "plan: api: reload — 1 of 2 workers running" in again.stdout
    last = workers(project)
    assert len(last) == 2 and read_state(project)["api"]["pid"] == supervisor

    down = project.invoke("down")
    assert down.returncode == 0, down.stderr
    everyone = {supervisor, *before, *after, *last}
    wait_for("no worker to survive `down`", lambda: not any(pid_alive(pid) for pid in everyone), timeout=10)
    assert project.invoke("status").returncode == 1


def test_workers_from_the_environment_restart_as_up_made_them_and_one_is_plain_uvicorn_again(project):
    project.env["OPS_API_WORKERS"] = "3"
    up(project)
    old, port = workers(project), read_state(project)["api"]["port"]
    assert len(old) == 3
    os.kill(read_state(project)["api"]["pid"], signal.SIGKILL)  # the supervisor: its workers are orphans
    again = up(project)
    assert "plan: api: start — not running" in again.stdout
    assert read_state(project)["api"]["port"] == port and len(workers(project)) == 3
    assert not any(pid_alive(pid) for pid in old)  # gone by themselves, or swept before the start
    restarted = project.invoke("restart", "api")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    api = read_state(project)["api"]
    assert (api["workers"], api["restart"]) == (3, "no")  # not dev's policy: up started it
    assert len(workers(project)) == 3

    del project.env["OPS_API_WORKERS"]
    single = up(project)
    assert "plan: api: restart — its declaration or settings changed" in single.stdout
    api = read_state(project)["api"]
    assert api["server"] is None and api["workers"] == 1  # plain uvicorn, as before workers
    assert "uvicorn" in " ".join(psutil.Process(api["pid"]).cmdline())
    status = project.invoke("status")
    assert status.returncode == 0 and "workers" not in status.stdout, status.stdout


def test_dev_shows_the_workers_and_reloads_at_once_an_api_of_ups_short_of_one(project):
    project.env["OPS_API_WORKERS"] = "2"
    up(project)
    supervisor, before = read_state(project)["api"]["pid"], workers(project)
    process, output = start_dev(project)
    wait_for("the api row with its workers", lambda: "2/2 workers" in output.read_text())

    os.kill(before[0], signal.SIGKILL)
    wait_for("dev to reload it", lambda: "1 of 2 workers running; reloading it" in output.read_text())
    healed = wait_for("two new workers", lambda: len(w := workers(project)) == 2 and before[0] not in w and w)
    assert not set(healed) & set(before) and read_state(project)["api"]["pid"] == supervisor

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=DEADLINE_S)
    assert process.returncode == 0, output.read_text()
    assert "plan: api: reload — 1 of 2 workers running" in output.read_text()


@pytest.mark.parametrize(
    ("args", "env", "stack_workers", "message"),
    [
        (["up"], {}, 0, "stack.toml: api.workers: Input should be greater than or equal to 1"),
        (["up"], {"OPS_API_WORKERS": "0"}, None, "invalid setting api_workers '0'"),
        (["up", "--api-workers=-1"], {}, None, "invalid setting api_workers '-1'"),
        (["dev"], {"OPS_API_WORKERS": "many"}, None, "invalid setting api_workers 'many'"),
    ],
)
def test_a_bad_worker_count_is_one_line_exit_2_and_nothing_started(
    project, args, env, stack_workers, message
):
    if stack_workers is not None:
        declare_workers(project, stack_workers)
    project.env.update(env)
    result = project.invoke(*args, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
    assert message in result.stderr
    assert not project.state_file.exists()  # nothing started
