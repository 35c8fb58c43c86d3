"""The union of the shards runs every test exactly once: the real suite, split as `invoke ci --shard` does.

The suite is collected once in a subprocess; pytest-split's own algorithm (the one `ops.shards`
names) then splits those ids with the committed durations into 2, 3 and 5 shards, and one shard
is collected again through pytest-split's plugin with the very flags `invoke ci` passes, to show
that the plugin picks what the algorithm says. Items are compared by their place in the
collection, not by id: schemathesis's items share one id (one item per API operation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from pytest_split.algorithms import Algorithms

from ops.shards import ALGORITHM, DURATIONS_FILE, Shard, pytest_args
from tests.support.collect import collected_ids
from tests.support.paths import PROJECT_DIR


@dataclass(frozen=True)
class Collected:
    """A collected test as pytest-split's algorithms see it (its id), and its place in the collection."""

    nodeid: str
    place: int


@pytest.fixture(scope="module")
def suite() -> list[str]:
    return collected_ids(PROJECT_DIR, "tests")


def split(ids: list[str], total: int) -> list[list[Collected]]:
    """The items of each of `total` shards, as pytest-split makes them from the committed durations."""
    durations = json.loads((PROJECT_DIR / DURATIONS_FILE).read_text())
    items = [Collected(nodeid, place) for place, nodeid in enumerate(ids)]
    return [group.selected for group in Algorithms[ALGORITHM].value(total, items, durations)]


def test_the_durations_file_is_pytest_splits_json_of_this_suite(suite):
    durations = json.loads((PROJECT_DIR / DURATIONS_FILE).read_text())
    assert isinstance(durations, dict) and durations
    assert all(isinstance(seconds, float | int) and seconds >= 0 for seconds in durations.values())
    assert set(durations) & set(suite), "no test of the suite has a recorded duration"


@pytest.mark.parametrize("total", [2, 3, 5])
def test_the_shards_are_disjoint_and_together_the_whole_suite(suite, total):
    shards = split(suite, total)
    assert len(shards) == total and all(shards), "a shard is empty"
    places = [item.place for shard in shards for item in shard]
    assert len(places) == len(set(places)), "a test is in two shards"
    assert sorted(places) == list(range(len(suite))), "a test is in no shard"


def test_pytest_split_picks_for_invoke_ci_what_the_algorithm_says(suite):
    shard = Shard(2, 3)
    chosen = collected_ids(PROJECT_DIR, "tests", *pytest_args(shard, PROJECT_DIR))
    assert chosen == [item.nodeid for item in split(suite, shard.total)[shard.index - 1]]
