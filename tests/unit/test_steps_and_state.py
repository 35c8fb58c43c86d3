"""The step ledger, the state file and the stack lock."""

import json
import os
import signal
import stat
import time

import pytest

from ops.errors import ApiError, StackBusy
from ops.signals import sigint_held
from ops.state import (
    DbRecord,
    StackState,
    StateProblem,
    load_state,
    load_state_or_fresh,
    save_state,
    stack_lock,
)
from ops.steps import FAIL, OK, SKIP, Ledger


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        self.now += 0.5
        return self.now


def test_steps_print_greppable_lines_and_record_outcomes():
    lines, saved = [], []
    ledger = Ledger(emit=lines.append, on_change=saved.append, clock=FakeClock())
    with ledger.step("db"):
        pass
    with ledger.step("migrate") as step:
        step.skip("already at head")
    with pytest.raises(ApiError), ledger.step("api-health") as step:
        step.attempts = 3
        raise ApiError("uvicorn exited with code 3", "see api.log", evidence="ImportError: boom")
    assert lines == ["::STEP::db::OK", "::STEP::migrate::SKIP", "::STEP::api-health::FAIL"]
    statuses = [(s["name"], s["status"]) for s in saved[-1]]
    assert statuses == [("db", OK), ("migrate", SKIP), ("api-health", FAIL)]
    failed = ledger.failed
    assert failed is not None and failed.name == "api-health"
    assert failed.attempts == 3 and failed.duration_s == 0.5
    assert failed.detail == "uvicorn exited with code 3 — see api.log"
    assert failed.evidence == "ImportError: boom"


def test_interrupt_is_recorded_as_failure():
    ledger = Ledger(emit=lambda _line: None)
    with pytest.raises(KeyboardInterrupt), ledger.step("db"):
        raise KeyboardInterrupt
    assert ledger.steps[0].status == FAIL and ledger.steps[0].detail == "interrupted"


class Heard:
    def __init__(self):
        self.events = []

    def started(self, step):
        self.events.append(("started", step.name))

    def ended(self, step):
        self.events.append(("ended", step.name, step.status))


def test_a_failure_outside_any_step_is_recorded_as_a_failed_step_without_raising():
    lines, saved, heard = [], [], Heard()
    ledger = Ledger(emit=lines.append, on_change=saved.append, clock=FakeClock(), hooks=heard)
    with ledger.step("db"):
        pass
    step = ledger.record_failure("up", StackBusy("another invoke holds the stack", "wait for it"))
    assert ledger.failed is step and step.name == "up" and step.status == FAIL
    assert step.detail == "another invoke holds the stack — wait for it"
    assert lines == ["::STEP::db::OK", "::STEP::up::FAIL"]
    assert [(s["name"], s["status"]) for s in saved[-1]] == [("db", OK), ("up", FAIL)]
    assert heard.events[-2:] == [("started", "up"), ("ended", "up", FAIL)]
    assert step.offset_s > ledger.steps[0].offset_s


def test_state_file_is_written_atomically_with_mode_0600(tmp_path):
    path = tmp_path / "state.json"
    save_state(path, StackState(db=DbRecord(port=5433)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_state(path).db.port == 5433
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left behind


def test_missing_state_is_fresh(tmp_path):
    assert load_state(tmp_path / "nope.json") == StackState()


@pytest.mark.parametrize(
    "content", ['{"db": {"port": 54', '{"version": 99}', "[1, 2]", '{"version": 2, "db": {"port": "x"}}']
)
def test_unusable_state_is_set_aside_and_replaced_by_a_fresh_one(tmp_path, content):
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(StateProblem):
        load_state(path)
    warnings = []
    assert load_state_or_fresh(path, warnings.append) == StackState()
    assert (tmp_path / "state.json.bad").read_text() == content
    assert "starting from a fresh state" in warnings[0]


def test_second_holder_of_the_stack_lock_fails_clearly(tmp_path):
    with stack_lock(tmp_path):
        pid = os.fork()
        if pid == 0:  # a second process tries the same lock
            try:
                with stack_lock(tmp_path):
                    os._exit(0)
            except StackBusy:
                os._exit(8)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 8
    with stack_lock(tmp_path):  # released afterwards
        pass


def test_a_waiting_holder_gets_the_lock_once_the_other_lets_go(tmp_path):
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # holds the lock for 0.3 s
        with stack_lock(tmp_path):
            os.write(ready_write, b"x")
            time.sleep(0.3)
        os._exit(0)
    os.read(ready_read, 1)
    with pytest.raises(StackBusy), stack_lock(tmp_path):
        pass
    with stack_lock(tmp_path, wait_seconds=10):  # `invoke dev`'s wait: StackBusy if it gave up
        pass
    os.waitpid(pid, 0)


def test_state_is_json_with_version(tmp_path):
    path = tmp_path / "state.json"
    save_state(path, StackState(stack="x"))
    assert json.loads(path.read_text())["version"] == 2


def test_ctrl_c_during_a_state_write_waits_for_the_file_then_interrupts(tmp_path):
    """A SIGINT inside the write is held: the file lands whole, then KeyboardInterrupt is raised."""
    path = tmp_path / "state.json"
    landed = []
    with pytest.raises(KeyboardInterrupt), sigint_held():
        os.kill(os.getpid(), signal.SIGINT)
        save_state(path, StackState(stack="held"))
        landed.append(load_state(path).stack)
    assert landed == ["held"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left


def test_a_state_write_without_a_signal_leaves_the_handler_as_it_was(tmp_path):
    save_state(tmp_path / "state.json", StackState(stack="calm"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o600


def test_a_version_1_state_file_is_read_and_upgraded(tmp_path):
    """What the previous release wrote (same keys, no processes or fingerprints) still loads."""
    path = tmp_path / "state.json"
    v1 = {
        "version": 1,
        "stack": "homer",
        "last_command": "up",
        "db": {"backend": "embedded", "host": "127.0.0.1", "port": 5433, "password": "pw", "pid": 42},
        "api": {"pid": 4242, "url": "http://127.0.0.1:8000", "log": "/x/api.log"},
        "steps": [
            {"name": "db", "status": "OK", "attempts": 1, "duration_s": 0.5, "detail": "", "evidence": ""}
        ],
    }
    path.write_text(json.dumps(v1))
    state = load_state(path)
    assert state.version == 2 and state.db.port == 5433 and state.api.pid == 4242
    assert state.steps[0].name == "db" and state.processes == {} and state.fingerprints == {}
    save_state(path, state)
    assert json.loads(path.read_text())["version"] == 2
    assert load_state(path) == state


def test_keys_a_newer_release_wrote_are_kept(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 2, "db": {"port": 1, "replicas": [1, 2]}, "future": True}))
    save_state(path, load_state(path))
    saved = json.loads(path.read_text())
    assert saved["db"]["replicas"] == [1, 2] and saved["future"] is True
