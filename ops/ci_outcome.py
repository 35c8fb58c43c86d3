"""How an `invoke ci` run ends: its first failure (whose exit code is the run's) and any Ctrl-C."""

from __future__ import annotations

from dataclasses import dataclass

INTERRUPTED = 130


@dataclass
class Outcome:
    """The first failure of the run, and whether it was interrupted (an interrupt always means 130)."""

    failure: BaseException | None = None
    interrupted: bool = False

    def fail(self, exc: BaseException) -> None:
        """Remember the first failure; an interrupt is remembered whenever it comes."""
        if self.failure is None:
            self.failure = exc
        if isinstance(exc, KeyboardInterrupt):
            self.interrupted = True

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return INTERRUPTED
        if self.failure is None:
            return 0
        return int(getattr(self.failure, "exit_code", 1))

    def raise_it(self) -> None:
        """End the run as it went: Ctrl-C again, or the first failure."""
        if self.interrupted:
            raise KeyboardInterrupt
        if self.failure is not None:
            raise self.failure
