"""The API's workers: how many should serve, and which of the warm server's children serve now.

With `workers` above 1 the API is the warm server (`ops.warm_server`): a supervisor that holds the
listening socket and forks generations of N children. Its events file says exactly which pids serve:
`ready` and `reloaded` name a generation's, `restarted` puts a replacement in the place of the pid it
replaces, `child_exited` drops one. Those that still run as the supervisor's children are the workers
running. A bare count of its children would be wrong twice: the probe child (`preload`) is one before
the first generation, and a retiring generation is N more during a reload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.procs import live_children, pid_alive, rss_mb
from ops.state import ProcessRecord


@dataclass(frozen=True)
class Workers:
    """The API's workers as seen now: how many it should have, and the pids of those that serve."""

    expected: int
    running: tuple[int, ...]
    supervisor: int | None

    @property
    def complete(self) -> bool:
        return len(self.running) >= self.expected

    def count(self) -> str:
        """`2/2 workers`."""
        return f"{len(self.running)}/{self.expected} workers"

    def shortfall(self) -> str | None:
        """`1 of 2 workers running`, or None when all are."""
        return None if self.complete else f"{len(self.running)} of {self.expected} workers running"

    def certified(self) -> dict[str, int | None]:
        """The workers' pids for the no-op certificate (`ops.noop`), one entry per expected worker: a
        missing one is None, so that a degraded API is never certified, and a dead one voids it."""
        if self.expected < 2:
            return {}
        pids: list[int | None] = [*self.running, *([None] * (self.expected - len(self.running)))]
        return {f"api worker {n}": pid for n, pid in enumerate(pids[: self.expected], start=1)}


def described(workers: Workers) -> dict[str, Any]:
    """What `diagnose` reports of them: how many of how many, and each one's pid and RSS (MB)."""
    pids = [{"pid": pid, "rss_mb": rss_mb(pid)} for pid in workers.running]
    return {"expected": workers.expected, "running": len(workers.running), "pids": pids}


def expected(record: ProcessRecord) -> int:
    """How many workers the recorded API was started with (one for a record from before workers)."""
    return record.workers or 1


def serving(events: Iterable[Mapping[str, Any]]) -> set[int]:
    """The pids that serve after the warm server's `events`, oldest first (`ops.warm_server.events`)."""
    pids: set[int] = set()
    for event in events:
        kind = event.get("event")
        if kind in ("ready", "reloaded"):
            pids = {pid for pid in map(_pid, event.get("pids") or ()) if pid is not None}
        elif kind == "restarted":
            pids.discard(_pid(event.get("replaces")) or 0)
            if (pid := _pid(event.get("pid"))) is not None:
                pids.add(pid)
        elif kind == "child_exited":
            pids.discard(_pid(event.get("pid")) or 0)
        elif kind in ("stopped", "gave_up"):
            pids = set()
    return pids


def census(record: ProcessRecord, events: Path) -> Workers:
    """The recorded API's workers now. The warm server's: the serving pids of its `events` that run
    as its children. Plain uvicorn's: itself, or (where fork does not exist) its `--workers` children."""
    pid, wanted = record.pid, expected(record)
    if record.server == "warm":
        from ops.warm_server import read_events

        running = serving(read_events(events)[0]) & live_children(pid)
    elif wanted > 1:
        running = live_children(pid)
    else:
        running = {pid} if pid is not None and pid_alive(pid) else set()
    return Workers(wanted, tuple(sorted(running)), pid)


def _pid(value: Any) -> int | None:
    try:
        pid = int(value)
    except (TypeError, ValueError):
        return None
    return pid if pid > 0 else None
