"""The dev loop's timing rules with a fake clock: restart backoff, giving up, debouncing."""

from __future__ import annotations

from pathlib import Path

from ops.backoff import Backoff, RestartPolicy
from ops.stackfile import load_stack_file
from ops.watch import STACK, Debouncer, affected, targets

PROJECT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_quick_crashes_double_the_wait_then_give_up() -> None:
    clock = Clock()
    backoff = Backoff(RestartPolicy(first_s=0.5, longest_s=3.0, quick_s=30, give_up_after=4), clock)
    backoff.started()
    waits = []
    for _ in range(4):
        clock.advance(1)  # dies a second after each start: quick
        waits.append(backoff.crashed())
        assert not backoff.due()
        clock.advance(waits[-1] or 0)
        assert backoff.due()
        backoff.restarting()
    assert waits == [0.5, 1.0, 2.0, 3.0]  # doubled, capped at longest_s
    clock.advance(1)
    assert backoff.crashed() is None and backoff.gave_up
    assert not backoff.due()
    assert backoff.restarts == 4


def test_a_crash_after_a_good_run_starts_the_count_again() -> None:
    clock = Clock()
    backoff = Backoff(RestartPolicy(first_s=0.5, quick_s=30, give_up_after=2), clock)
    backoff.started()
    clock.advance(1)
    assert backoff.crashed() == 0.5
    backoff.restarting()
    clock.advance(1)
    assert backoff.crashed() == 1.0
    backoff.restarting()
    clock.advance(120)  # ran well for two minutes
    assert backoff.crashed() == 0.5
    assert not backoff.gave_up


def test_debouncer_waits_for_quiet_then_hands_over_one_batch() -> None:
    clock = Clock()
    debouncer = Debouncer(quiet_s=0.1, longest_s=1.0, clock=clock)
    assert debouncer.batch() is None
    debouncer.add(["app/routes.py"])
    clock.advance(0.05)
    debouncer.add(["app/routes.py", "app/search.py"])  # an editor's burst
    clock.advance(0.05)
    assert debouncer.batch() is None  # 0.05 s since the last write
    clock.advance(0.06)
    assert debouncer.batch() == ["app/routes.py", "app/search.py"]
    assert debouncer.batch() is None


def test_debouncer_does_not_wait_forever_on_a_file_written_continuously() -> None:
    clock = Clock()
    debouncer = Debouncer(quiet_s=0.1, longest_s=0.5, clock=clock)
    for _ in range(5):
        debouncer.add(["data/big.xml"])
        clock.advance(0.09)
        assert debouncer.batch() is None
    clock.advance(0.09)
    debouncer.add(["data/big.xml"])
    assert debouncer.batch() == ["data/big.xml"]  # 0.54 s after the first write


def test_targets_are_the_fingerprint_inputs_and_nothing_else(tmp_path: Path) -> None:
    from ops.settings import build_settings

    stack = load_stack_file(PROJECT / "stack.toml")
    settings = build_settings(PROJECT, {}, {}, {}, stack.settings_layer())
    found = targets(settings, stack)
    hits = affected(
        found,
        [
            "app/routes.py",
            "migrations/versions/ffff_new.py",
            "stack.toml",
            "tests/unit/test_x.py",
            "README.md",
        ],
    )
    assert hits["api"] == ["app/routes.py", "migrations/versions/ffff_new.py"]
    assert hits["migrate"] == ["migrations/versions/ffff_new.py"]
    assert hits[STACK] == ["stack.toml"]
    assert all("tests/unit/test_x.py" not in paths and "README.md" not in paths for paths in hits.values())
    assert "apps/x.py" not in {p for paths in affected(found, ["apps/x.py"]).values() for p in paths}
