"""The API's workers: the serving pids from the warm server's events, the count, the plan's heal,
and the setting's layers. A fake process (a sleeping child) stands in for a supervisor's worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops.api import server_for
from ops.api_workers import Workers, census, serving
from ops.errors import UsageError
from ops.plan import RELOAD, RESTART, degraded_action
from ops.settings import build_settings
from ops.stackfile import parse_stack
from ops.state import ProcessRecord
from ops.warm_server import available

ROOT = Path(__file__).resolve().parents[2]


def test_serving_follows_generations_replacements_and_exits():
    events = [
        {"event": "preloaded", "count": 500},
        {"event": "ready", "pids": [11, 12], "generation": 1},
        {"event": "child_exited", "pid": 12, "code": -9, "generation": 1},
        {"event": "restarted", "pid": 13, "replaces": 12, "generation": 1},
    ]
    assert serving(events) == {11, 13}
    reloaded = [*events, {"event": "reloaded", "pids": [21, 22], "generation": 2}]
    assert serving(reloaded) == {21, 22}  # the retiring generation no longer counts
    failed = [*reloaded, {"event": "reload_failed", "generation": 3, "serving": 2}]
    assert serving(failed) == {21, 22}
    assert serving([*reloaded, {"event": "stopped"}]) == set()
    assert serving([*reloaded, {"event": "child_exited", "pid": 22}]) == {21}


def test_serving_before_the_first_generation_is_ready_is_nothing():
    assert serving([{"event": "preloaded", "count": 500}]) == set()  # the probe child is no worker
    assert serving([{"event": "ready", "pids": ["x", None, 7]}]) == {7}  # torn or odd fields skipped


def test_workers_count_shortfall_and_certificate_entries():
    whole = Workers(2, (11, 12), 10)
    assert whole.complete and whole.count() == "2/2 workers" and whole.shortfall() is None
    assert whole.certified() == {"api worker 1": 11, "api worker 2": 12}
    short = Workers(2, (12,), 10)
    assert not short.complete and short.shortfall() == "1 of 2 workers running"
    assert short.certified() == {"api worker 1": 12, "api worker 2": None}  # None: never certified
    assert Workers(1, (10,), 10).certified() == {}  # one worker: the supervisor's pid says it all


def test_the_plan_reloads_a_warm_server_short_of_workers_and_restarts_plain_uvicorn():
    action = degraded_action("api", Workers(2, (12,), 10), warm=True)
    assert action is not None and action.verb == RELOAD
    assert action.line() == "api: reload — 1 of 2 workers running"
    plain = degraded_action("api", Workers(4, (), 10), warm=False)
    assert plain is not None and plain.verb == RESTART and plain.reason == "0 of 4 workers running"
    assert degraded_action("api", Workers(2, (11, 12), 10), warm=True) is None


def test_census_counts_only_serving_pids_that_run_as_the_supervisors_children(tmp_path):
    """This test process is the 'supervisor': a sleeping child is one worker, a pid named in the
    events that is not its child (its own) is none."""
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        events = tmp_path / "api.events.jsonl"
        ready = {"event": "ready", "pids": [worker.pid, 1], "generation": 1}
        events.write_text(json.dumps(ready) + "\n")
        record = ProcessRecord(pid=os.getpid(), server="warm", workers=2, restart="no")
        found = census(record, events)
        assert found.running == (worker.pid,) and found.shortfall() == "1 of 2 workers running"
        worker.kill()
        worker.wait()
        assert census(record, events).running == ()
    finally:
        worker.kill()
        worker.wait()


def test_workers_come_from_the_stack_file_then_yaml_env_and_flags():
    declared = parse_stack(
        {
            "db": {"kind": "postgres"},
            "api": {"kind": "asgi", "app": "app.main:app", "workers": 3},
        },
        ROOT / "stack.toml",
    ).settings_layer()
    assert build_settings(ROOT, declared=declared).api_workers == 3
    assert build_settings(ROOT, config={"api_workers": 2}, declared=declared).api_workers == 2
    env = {"OPS_API_WORKERS": "4"}
    assert build_settings(ROOT, config={"api_workers": 2}, env=env, declared=declared).api_workers == 4
    assert build_settings(ROOT, env=env, flags={"api_workers": "5"}).api_workers == 5
    assert build_settings(ROOT).api_workers == 1


@pytest.mark.parametrize("value", ["0", "-1", "65", "two"])
def test_a_bad_worker_count_is_a_usage_error(value):
    with pytest.raises(UsageError, match="invalid setting api_workers"):
        build_settings(ROOT, env={"OPS_API_WORKERS": value})


def test_workers_zero_in_the_stack_file_names_the_key():
    with pytest.raises(UsageError, match=r"api\.workers: Input should be greater than or equal to 1"):
        parse_stack(
            {"db": {"kind": "postgres"}, "api": {"kind": "asgi", "app": "app.main:app", "workers": 0}},
            ROOT / "stack.toml",
        )


@pytest.mark.skipif(not available(), reason="the warm server forks")
def test_the_server_is_plain_uvicorn_for_one_worker_and_the_warm_server_above():
    one, two = build_settings(ROOT), build_settings(ROOT, flags={"api_workers": 2})
    assert not server_for(one, warm=False).warm  # the cold `up` path is unchanged
    assert server_for(one, warm=True).restart == "on-failure"  # dev: the warm server re-forks
    under_up = server_for(two, warm=False)
    assert under_up.warm and under_up.workers == 2 and under_up.restart == "no"  # the harness heals
    assert server_for(two, warm=True).restart == "on-failure"
