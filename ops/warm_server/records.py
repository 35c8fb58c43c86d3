"""The warm parent's records and constants: its options, its children, its generations, its crashes."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

STOP_GRACE = 5.0  # seconds from SIGTERM to SIGKILL
READY_TIMEOUT = 60.0  # a generation not ready by then has failed
QUICK = 30.0  # a crash within this of the child's start is quick; crashes further apart reset the backoff
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
HANDLED = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)


@dataclass(frozen=True)
class Options:
    """The command line: `python -m ops.warm_server APP --host H --port P ...`."""

    app: str
    host: str
    port: int
    events: Path | None = None
    workers: int = 1
    restart: str = "on-failure"
    max_quick_crashes: int = 5


@dataclass
class Child:
    """A forked child as the parent sees it; `fd` is its status pipe (-1 once closed)."""

    pid: int
    generation: int
    fd: int
    started: float
    replaces: int | None = None
    ready: bool = False
    stopping: bool = False
    error: str = ""
    traceback: str = ""
    buffer: bytes = b""


@dataclass
class Pending:
    """A generation being started: its number and when it was asked for (monotonic)."""

    number: int
    requested: float


@dataclass
class Crashes:
    """The restart backoff and the count of quick crashes in a row."""

    backoff: float = BACKOFF_FIRST
    quick: int = 0
    last: float | None = None  # when the last crash was (monotonic)

    def crashed(self, started: float, now: float) -> float:
        """Count a crash, at `now`, of a child started at `started`; the delay before its replacement.

        Quick (within QUICK of its start) crashes count up, any other resets the count; a crash
        more than QUICK after the previous one starts the backoff again from BACKOFF_FIRST.
        """
        if self.last is not None and now - self.last > QUICK:
            self.backoff = BACKOFF_FIRST
        self.last = now
        self.quick = self.quick + 1 if now - started < QUICK else 0
        delay, self.backoff = self.backoff, min(self.backoff * 2, BACKOFF_MAX)
        return delay
