"""Standard output that its reader may close early (`invoke up | head -3`, `less` quit at once).

Python turns the closed pipe into a BrokenPipeError at the next write or flush, which ended a
command halfway (an `up` that had printed its plan stopped before starting anything) with a
traceback. Here the first such error points the output at /dev/null instead: the command goes
on, its work done and its exit code its own, and what it would have printed is dropped. Standard
error is left alone: warnings and the one-line errors still reach the terminal.
"""

from __future__ import annotations

import os
from typing import Any, TextIO


class ClosedReaderSafe:
    """`stream` (a text stream on a file descriptor), whose writes after its reader left go nowhere."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        """From now on, and for the interpreter's own flush at exit: /dev/null behind the descriptor."""
        self.reader_gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, ...: the stream's own
        return getattr(self._stream, name)


def guard_stdout() -> None:
    """Make `sys.stdout` safe against a reader that leaves (once; a no-op without a real stdout)."""
    import sys

    if sys.stdout is not None and not isinstance(sys.stdout, ClosedReaderSafe):
        sys.stdout = ClosedReaderSafe(sys.stdout)  # type: ignore[assignment]
