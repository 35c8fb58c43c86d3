"""One command's hold on a stack: its lock, state and ledger (`session`), and the database
endpoint its state records."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ops.endpoint import Endpoint
from ops.plan import Plan
from ops.settings import Settings
from ops.state import (
    StackState,
    StateProblem,
    StepRecord,
    load_state,
    load_state_or_fresh,
    save_state,
    stack_lock,
)
from ops.step_report import hooks_for
from ops.steps import Emit, Ledger, StepHooks
from ops.waiting import WaitPolicy


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def warn(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass
class Session:
    """One command's view of the stack: its settings, state, ledger and backend."""

    settings: Settings
    state: StackState
    ledger: Ledger
    command: str
    emit: Emit = print
    plan: Plan | None = None
    warm_api: bool = False  # start the API under the warm server (invoke dev)

    def save(self, steps: list[dict[str, Any]] | None = None) -> None:
        self.state.stack = self.settings.stack
        self.state.last_command = self.command
        self.state.updated_at = now()
        self.state.steps = [StepRecord(**step) for step in (steps or self.ledger.as_dicts())]
        save_state(self.settings.state_file, self.state)

    def policy(self, timeout: float) -> WaitPolicy:
        s = self.settings
        return WaitPolicy(s.retry_attempts, timeout, s.wait_initial, s.wait_max)


@contextmanager
def session(
    settings: Settings, command: str, emit: Emit, hooks: StepHooks | None = None
) -> Iterator[Session]:
    """Lock the stack, load its state, and save the ledger after every step.

    `hooks` hear of each step (default: GitHub Actions groups and annotations when there).
    """
    with stack_lock(settings.state_dir):
        state = load_state_or_fresh(settings.state_file, warn)

        def save(steps: list[dict[str, Any]]) -> None:  # after every step, once `current` exists
            current.save(steps)

        ledger = Ledger(emit, on_change=save, hooks=hooks if hooks is not None else hooks_for(emit))
        current = Session(settings, state, ledger, command, emit)
        try:
            yield current
        except KeyboardInterrupt:
            current.ledger.record_interrupt()
            raise
        finally:
            current.save()


def recorded_endpoint(settings: Settings, state: StackState) -> Endpoint | None:
    db = state.db
    if not db.port or db.password is None:
        return None
    return Endpoint(
        db.host or settings.db_host,
        db.port,
        db.user or settings.db_user,
        db.password,
        db.database or settings.db_name,
        dict(db.params),
        tuple((host, int(port)) for host, port in db.more_hosts),
    )


def writer_endpoint(settings: Settings, state: StackState) -> Endpoint | None:
    """The recorded endpoint for connections that write (a multi-host DSN's read-write server)."""
    endpoint = recorded_endpoint(settings, state)
    return None if endpoint is None else endpoint.for_writes()


def load_state_or_fresh_readonly(settings: Settings) -> StackState:
    try:
        return load_state(settings.state_file)
    except StateProblem:
        return StackState()
