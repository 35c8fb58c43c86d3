"""Holding signals while something must finish: a state write, a teardown."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def signals_held(
    signals: tuple[signal.Signals, ...] = (signal.SIGINT,),
    on_signal: Callable[[int], None] | None = None,
) -> Iterator[list[int]]:
    """Note each of `signals` that arrives during the block instead of obeying it; yields the notes.

    Only the main thread can set handlers: elsewhere the block runs as is.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def note(signum: int, _frame: Any) -> None:
        received.append(signum)
        if on_signal is not None:
            on_signal(signum)

    previous = {sig: signal.signal(sig, note) for sig in signals}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def sigint_held() -> Iterator[None]:
    """Hold Ctrl-C for the block, then raise the KeyboardInterrupt it would have raised."""
    with signals_held() as received:
        yield
    if received:
        raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a cancelled CI job, `kill`) is handled like Ctrl-C for the block: cleanups still run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
