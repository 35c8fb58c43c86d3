"""The step ledger: each named step's status, attempts, duration and detail.

Every step prints one greppable `::STEP::<name>::OK|FAIL|SKIP` line and is saved
(through `on_change`) into the state file as soon as it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ops.errors import OpsError

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
        emit: Callable[[str], None] = print,
        on_change: Callable[[list[dict[str, Any]]], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        hooks: StepHooks | None = None,
    ) -> None:
        self.steps: list[Step] = []
        self._emit = emit
        self._on_change = on_change
        self._clock = clock
        self._hooks = hooks

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Run the body as step `name`: OK unless it raises (FAIL) or calls skip() (SKIP)."""
        record = Step(name)
        self.steps.append(record)
        if self._hooks:
            self._hooks.started(record)
        began = self._clock()
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
            if self._hooks:
                self._hooks.ended(record)
            self._emit(f"::STEP::{name}::{record.status}")
            if self._on_change:
                self._on_change(self.as_dicts())

    def record_interrupt(self) -> None:
        """Record a Ctrl-C that landed between steps (one inside a step already FAILs it)."""
        if any(step.detail == INTERRUPTED for step in self.steps):
            return
        self.steps.append(Step("interrupted", status=FAIL, detail=INTERRUPTED))
        self._emit(f"::STEP::interrupted::{FAIL}")

    def as_dicts(self) -> list[dict[str, Any]]:
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
