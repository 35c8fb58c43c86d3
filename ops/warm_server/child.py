"""One forked child of the warm server: import the APP afresh and serve it on the shared socket.

It tells the parent on its status pipe, one JSON line: `{"ready": true}` once uvicorn has started,
or `{"error": ..., "traceback": ...}` (then exit code 3) when the import or the startup fails. It
stops by itself when its parent dies (the parent's pid is polled: portable, unlike PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from types import FrameType
from typing import Any, NoReturn

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ops.warm_server import EXIT_CHILD_FAILED
from ops.warm_server.preload import Project, load_app

PARENT_POLL = 0.5  # seconds between looks at the parent's pid
ORPHAN_GRACE = 5.0  # seconds of graceful shutdown after the parent died, then _exit
TIMEOUT_GRACEFUL = 4  # uvicorn's own bound on a shutdown, under the parent's SIGKILL after 5 s
RESET_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
TRACEBACK_LINES = 8


def serve(
    app: str, project: Project, sock: socket.socket, status_fd: int, parent: int, close: Iterable[int]
) -> NoReturn:
    """The child's whole life, right after the fork (signals still blocked): never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)  # the parent's self-pipe is not ours
        for sig in RESET_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, RESET_SIGNALS)
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        _watch_parent(parent)
        code = _run(app, project, sock, status_fd)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _run(app: str, project: Project, sock: socket.socket, status_fd: int) -> int:
    try:
        target = load_app(app, project)
    except BaseException as exc:
        traceback.print_exc()
        report(status_fd, failure(exc))
        return EXIT_CHILD_FAILED
    # uvicorn's loggers left as they are when they have handlers: the app's own configuration (as
    # app/logs.py applies on import) or the preload's uvicorn defaults, inherited through the fork
    config = uvicorn.Config(
        target,
        lifespan="auto",
        log_level="info",
        timeout_graceful_shutdown=TIMEOUT_GRACEFUL,
        log_config=None if logging.getLogger("uvicorn").handlers else LOGGING_CONFIG,
    )
    server = _ReadyServer(config, status_fd)
    logged = _LastError()
    logging.getLogger("uvicorn.error").addHandler(logged)
    try:
        server.run(sockets=[sock])
    except BaseException as exc:
        if server.started:
            raise
        if isinstance(exc, SystemExit):  # uvicorn's exit after a failed lifespan startup: it logged why
            report(status_fd, logged.failure())
        else:
            traceback.print_exc()
            report(status_fd, failure(exc))
        return EXIT_CHILD_FAILED
    return 0


class _LastError(logging.Handler):
    """Keeps the last traceback uvicorn logged (a failed lifespan startup is only logged, as text)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.lines = "".join(traceback.format_exception(record.exc_info[1])).splitlines()
        elif "Traceback" in (text := record.getMessage()):
            self.lines = text.splitlines()

    def failure(self) -> dict[str, str]:
        lines = [line for line in self.lines if line.strip()]
        if not lines:
            return {"error": "the application's startup failed (see the log)", "traceback": ""}
        return {"error": lines[-1].strip(), "traceback": "\n".join(lines[-TRACEBACK_LINES:])}


class _ReadyServer(uvicorn.Server):
    """uvicorn's server that says `ready` on the status pipe once it has started, and that stops
    accepting at once on SIGTERM (uvicorn notices it only on its next 0.1 s tick): after a reload
    the new generation takes every new connection."""

    def __init__(self, config: uvicorn.Config, status_fd: int) -> None:
        super().__init__(config)
        self.status_fd = status_fd
        self.loop: asyncio.AbstractEventLoop | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._stop_accepting)

    def _stop_accepting(self) -> None:
        for server in getattr(self, "servers", []):
            server.close()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        if self.started and self.status_fd >= 0:
            report(self.status_fd, {"ready": True})
            os.close(self.status_fd)
            self.status_fd = -1


def failure(exc: BaseException) -> dict[str, str]:
    """The one-line error and the traceback's last lines, for the parent's events."""
    lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return {"error": error, "traceback": "\n".join(lines[-TRACEBACK_LINES:])}


def report(fd: int, message: dict[str, Any]) -> None:
    """Write one JSON line to the parent (never raising: a dead parent reads nothing)."""
    data = (json.dumps(message) + "\n").encode()
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(fd, data) :]


def _watch_parent(parent: int) -> None:
    """A daemon thread: when the parent is gone, shut down like on SIGTERM, then _exit."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE)
        os._exit(1)

    threading.Thread(target=watch, name="warm-parent-watch", daemon=True).start()
