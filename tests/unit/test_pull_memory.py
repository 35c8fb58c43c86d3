"""A failed pull is remembered for an hour, per image, so an air-gapped machine pays for it once."""

from __future__ import annotations

import pytest

from ops import pull_memory


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def test_a_failure_is_remembered_for_an_hour_then_forgotten():
    pull_memory.remember_failure("img:1", "dial tcp: no such host", now=1000.0)
    assert pull_memory.recent_failure("img:1", now=1000.0 + 60) == "dial tcp: no such host"
    assert pull_memory.recent_failure("img:2", now=1060.0) is None  # per image
    assert pull_memory.recent_failure("img:1", now=1000.0 + pull_memory.FORGET_AFTER_S + 1) is None


def test_a_pull_that_worked_clears_the_memory(cache_dir):
    pull_memory.remember_failure("img:1", "timeout", now=1000.0)
    pull_memory.forget("img:1")
    assert pull_memory.recent_failure("img:1", now=1001.0) is None
    assert (cache_dir / "homer-ops" / "pull-failures.json").exists()


def test_an_unreadable_memory_is_no_memory(cache_dir):
    path = cache_dir / "homer-ops" / "pull-failures.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert pull_memory.recent_failure("img:1") is None
    pull_memory.remember_failure("img:1", "x")  # and it is rewritten whole
    assert pull_memory.recent_failure("img:1") == "x"
