"""A shard of the test suite, `--shard K/N`: parsed once, and what it means for pytest and the artifacts.

pytest-split makes the N groups from the durations recorded in `.test_durations` (a test with
no record counts as the average of those that have one) and runs the K-th; since every shard
splits the same collection with the same file, the N shards together run each test once.
A shard names its artifacts with `-KofN` before the first dot of their first path part:
`junit-2of3.xml`, `steps-2of3.json`, `logs-2of3/api.log`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ops.errors import UsageError

DURATIONS_FILE = ".test_durations"  # pytest-split's JSON: {test id: seconds}, committed
ALGORITHM = "duration_based_chunks"  # contiguous runs of the collection: a module's fixtures stay together
MAX_SHARDS = 99
_FORM = re.compile(r"([0-9]{1,9})/([0-9]{1,9})")
_HINT = "give the shard as K/N with 1 ≤ K ≤ N ≤ 99, e.g. --shard 2/3 (the second of three)"


@dataclass(frozen=True)
class Shard:
    """The `index`-th (from 1) of `total` shards."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"

    @property
    def label(self) -> str:
        """`2of3`: the shard in a file or stack name."""
        return f"{self.index}of{self.total}"


def parse(text: str) -> Shard:
    """`K/N` as a Shard; anything else is a UsageError (exit 2)."""
    match = _FORM.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"--shard {text!r} is not K/N", _HINT)
    index, total = int(match[1]), int(match[2])
    if not 1 <= total <= MAX_SHARDS:
        raise UsageError(f"--shard {text!r}: N must be 1 to {MAX_SHARDS}", _HINT)
    if not 1 <= index <= total:
        raise UsageError(f"--shard {text!r}: K must be 1 to {total}", _HINT)
    return Shard(index, total)


def artifact_name(name: str, shard: Shard | None) -> str:
    """`name` as `shard` writes it: junit.xml -> junit-2of3.xml, logs/api.log -> logs-2of3/api.log."""
    if shard is None:
        return name
    first, slash, rest = name.partition("/")
    stem, dot, extension = first.partition(".")
    return f"{stem}-{shard.label}{dot}{extension}{slash}{rest}"


def pytest_args(shard: Shard | None, project_dir: Path, store_durations: bool = False) -> list[str]:
    """pytest-split's flags: run `shard`'s group, and/or record this run's durations (none: [])."""
    if shard is None and not store_durations:
        return []
    args = [f"--durations-path={project_dir / DURATIONS_FILE}"]
    if shard is not None:
        args += [f"--splits={shard.total}", f"--group={shard.index}", f"--splitting-algorithm={ALGORITHM}"]
    if store_durations:
        args.append("--store-durations")
    return args
