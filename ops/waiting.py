"""Bounded, narrow waits built on tenacity.

Only named transient errors are retried: a refused or dropped connection, SQLSTATE
57P03 ("the database system is starting up"), or `NotReady` raised by a poll. Bad
credentials, a missing database or an SQL error fail at once. Every wait is capped by
attempts and by time, and `alive` is checked before each attempt so that a dead server
ends the wait immediately instead of running out the clock.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # tenacity itself is imported by the first wait: `up` starts its branches first
    from tenacity import RetryCallState

T = TypeVar("T")

TRANSIENT_SQLSTATES = frozenset({"57P01", "57P03", "08000", "08003", "08006"})
TRANSIENT_MESSAGES = (
    "connection refused",
    "the database system is starting up",
    "the database system is not yet accepting connections",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "server closed the connection unexpectedly",
    "connection reset by peer",
    "terminating connection due to administrator command",
    "consuming input failed",
    "no connection to the server",
    "timeout expired",
    # a standby where target_session_attrs asks for a primary: a promotion may be under way
    "session is read-only",
    "server is in hot standby mode",
)
STANDBY_ONLY_MESSAGES = TRANSIENT_MESSAGES[-2:]


class NotReady(Exception):
    """Raised by a poll whose target is not ready yet (retried like a transient error)."""


@dataclass(frozen=True)
class WaitPolicy:
    """How long and how often to retry. Tests pass zero waits."""

    attempts: int = 200
    timeout: float = 30.0
    wait_initial: float = 0.02
    wait_max: float = 0.25
    fast_for: float = 1.0  # poll every wait_initial this long (most waits end in it), then back off


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying at connection time, False for everything else."""
    if isinstance(exc, NotReady):
        return True
    orig = getattr(exc, "orig", None)  # an SQLAlchemy DBAPIError wraps the driver's error
    if orig is not None and type(exc).__module__.startswith("sqlalchemy"):
        exc = orig
    if isinstance(exc, ConnectionRefusedError | ConnectionResetError):
        return True
    driver = sys.modules.get("psycopg")  # not imported yet: no psycopg error can be in hand
    if driver is not None and isinstance(exc, driver.OperationalError):
        if exc.sqlstate:
            return exc.sqlstate in TRANSIENT_SQLSTATES
        message = str(exc).lower()
        if "password authentication failed" in message or "does not exist" in message:
            return False
        return any(marker in message for marker in TRANSIENT_MESSAGES)
    return False


def retry_call(
    fn: Callable[[], T],
    policy: WaitPolicy,
    alive: Callable[[], None] | None = None,
) -> tuple[T, int]:
    """Call `fn` until it succeeds or fails for good; return (result, attempts).

    `alive`, when given, runs before every attempt and should raise (a non-transient
    error) when the thing waited on has died.
    """
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay

    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.timeout),
        wait=_fast_then_backoff(policy),
        reraise=True,
        before=_check_alive(alive),
    )
    result = retrying(fn)
    return result, retrying.statistics.get("attempt_number", 1)


def _fast_then_backoff(policy: WaitPolicy) -> Callable[[RetryCallState], float]:
    from tenacity import wait_exponential

    backoff = wait_exponential(multiplier=policy.wait_initial, min=policy.wait_initial, max=policy.wait_max)

    def wait(state: RetryCallState) -> float:
        if (state.seconds_since_start or 0.0) < policy.fast_for:
            return policy.wait_initial
        return backoff(state)

    return wait


def _check_alive(alive: Callable[[], None] | None) -> Callable[[RetryCallState], None]:
    def before(_state: RetryCallState) -> None:
        if alive is not None:
            alive()

    return before
