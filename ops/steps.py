"""The step ledger: each named step's status, attempts, duration and detail.

Every step prints one greppable `::STEP::<name>::OK|FAIL|SKIP` line and is saved
(through `on_change`) into the state file as soon as it ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ops.errors import OpsError

Emit = Callable[[str], None]  # where a command's lines go: print, a test's list, a CI record

OK, FAIL, SKIP = "OK", "FAIL", "SKIP"
INTERRUPTED = "interrupted"


@dataclass
class Step:
    """One step of a command, as it ran."""

    name: str
    status: str = "RUNNING"
    attempts: int = 1
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    duration_s: float = 0.0
    detail: str = ""
    evidence: str = ""
    offset_s: float = 0.0  # when it started, in seconds since the command's ledger began

    def skip(self, detail: str) -> None:
        """Mark this step as having nothing to do."""
        self.status, self.detail = SKIP, detail


class StepHooks(Protocol):
    """Told when each step starts and ends (e.g. GitHub Actions groups, a CI run's record)."""

    def started(self, step: Step) -> None: ...

    def ended(self, step: Step) -> None: ...


class Ledger:
    """Runs steps in order and records them."""

    def __init__(
        self,
        emit: Emit = print,
        on_change: Callable[[list[dict[str, Any]]], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        hooks: StepHooks | None = None,
    ) -> None:
        self.steps: list[Step] = []
        self._emit = emit
        self._on_change = on_change
        self._clock = clock
        self._hooks = hooks
        self._began = clock()
        self._lock = threading.RLock()  # steps of parallel branches end from their own threads

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Run the body as step `name`: OK unless it raises (FAIL) or calls skip() (SKIP)."""
        began = self._clock()
        record = Step(name, offset_s=round(began - self._began, 4))
        with self._lock:
            self.steps.append(record)
            if self._hooks:
                self._hooks.started(record)
        try:
            yield record
        except BaseException as exc:
            record.status = FAIL
            record.detail = _failure_detail(exc)
            record.evidence = getattr(exc, "evidence", "")
            raise
        else:
            if record.status == "RUNNING":
                record.status = OK
        finally:
            record.duration_s = round(self._clock() - began, 4)
            with self._lock:
                if self._hooks:
                    self._hooks.ended(record)
                self._emit(f"::STEP::{name}::{record.status}")
                if self._on_change:
                    self._on_change(self.as_dicts())

    def record_failure(self, name: str, exc: BaseException) -> Step:
        """A FAIL step `name` for an error raised outside any step (e.g. taking the stack's lock)."""
        record = Step(name, status=FAIL, detail=_failure_detail(exc), evidence=getattr(exc, "evidence", ""))
        record.offset_s = round(self._clock() - self._began, 4)
        with self._lock:
            self.steps.append(record)
            if self._hooks:
                self._hooks.started(record)
                self._hooks.ended(record)
            self._emit(f"::STEP::{name}::{FAIL}")
            if self._on_change:
                self._on_change(self.as_dicts())
        return record

    def record_interrupt(self) -> None:
        """Record a Ctrl-C that landed between steps (one inside a step already FAILs it)."""
        if any(step.detail == INTERRUPTED for step in self.steps):
            return
        self.steps.append(Step("interrupted", status=FAIL, detail=INTERRUPTED))
        self._emit(f"::STEP::interrupted::{FAIL}")

    def as_dicts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(step) for step in self.steps]

    @property
    def failed(self) -> Step | None:
        return next((step for step in self.steps if step.status == FAIL), None)


def _failure_detail(exc: BaseException) -> str:
    if isinstance(exc, OpsError):
        return exc.one_line()
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    return f"{type(exc).__name__}: {exc}"


def critical_path(steps: list[Step], slack: float = 0.005) -> list[Step]:
    """The chain of steps that made the command last as long as it did (as `systemd-analyze
    critical-chain` finds it): the step that ended last, then, before each, the step that ended
    last before it began."""
    done = [step for step in steps if step.status in (OK, SKIP, FAIL)]
    if not done:
        return []
    chain = [max(done, key=lambda step: step.offset_s + step.duration_s)]
    while True:
        start = chain[-1].offset_s
        before = [
            step for step in done if step.offset_s + step.duration_s <= start + slack and step not in chain
        ]
        if not before:
            return list(reversed(chain))
        chain.append(max(before, key=lambda step: step.offset_s + step.duration_s))


def describe_path(chain: list[Step]) -> str:
    """`critical path 1.42 s: db @0.00 (+0.31 s) -> migrate @0.32 (+0.06 s) -> ...`"""
    if not chain:
        return "critical path: no steps"
    total = chain[-1].offset_s + chain[-1].duration_s
    links = " -> ".join(f"{step.name} @{step.offset_s:.2f} (+{step.duration_s:.2f} s)" for step in chain)
    return f"critical path {total:.2f} s: {links}"
