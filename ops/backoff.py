"""When to restart a crashed component: backoff, and giving up after quick crashes in a row.

A crash soon after a start (within `quick_s`) counts towards giving up and doubles the wait
before the next start; a crash after a good run starts the count again. The clock is
injected, so the policy is tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    first_s: float = 0.5  # the wait before the first restart
    longest_s: float = 10.0  # the wait never grows past this
    quick_s: float = 30.0  # a crash this soon after a start is a quick one
    give_up_after: int = 5  # quick crashes in a row


class Backoff:
    """One component's restarts: `started()` when it starts, `crashed()` when it dies."""

    def __init__(self, policy: RestartPolicy = RestartPolicy(), clock: Callable[[], float] = time.monotonic):
        self.policy, self._clock = policy, clock
        self.restarts = 0  # shown in the view
        self.quick_crashes = 0
        self._started_at: float | None = None
        self._due: float | None = None

    def started(self) -> None:
        self._started_at, self._due = self._clock(), None

    def crashed(self) -> float | None:
        """The seconds to wait before restarting, or None: crashed too often, stop trying."""
        now = self._clock()
        ran = now - self._started_at if self._started_at is not None else 0.0
        self.quick_crashes = self.quick_crashes + 1 if ran < self.policy.quick_s else 1
        if self.quick_crashes > self.policy.give_up_after:
            self._due = None
            return None
        delay = min(self.policy.first_s * 2 ** (self.quick_crashes - 1), self.policy.longest_s)
        self._due = now + delay
        return delay

    @property
    def gave_up(self) -> bool:
        return self.quick_crashes > self.policy.give_up_after

    def due(self) -> bool:
        """True once the wait after a crash is over (then the caller restarts and calls `started`)."""
        return self._due is not None and self._clock() >= self._due

    def restarting(self) -> None:
        self.restarts += 1
        self.started()
