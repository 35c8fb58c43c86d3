"""A warm, forking supervisor for the ASGI app: an edit is served without a cold interpreter start.

The parent binds the port once, preloads the third-party modules the app imports (learned from a
short-lived probe child, so the parent never imports a project module) and forks *generations* of
uvicorn children that share the socket. SIGHUP forks a new generation and retires the old one only
once the new one is ready, so a broken edit leaves the old code serving. What happens is appended
to an events file, one JSON object a line, which a controller tails with `read_events`.

This package's top level is cheap to import (no uvicorn): the supervisor is `ops.warm_server.parent`,
run as `python -m ops.warm_server APP --host H --port P [--events FILE] ...` (see `argv`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

EXIT_CHILD_FAILED = 3  # a child whose import or startup failed
EXIT_PORT_IN_USE = 7  # the parent could not listen on host:port
EXIT_GAVE_UP = 11  # crashed too often, or nothing left to serve under --restart no
RESTART_POLICIES = ("no", "on-failure", "always")


def available() -> bool:
    """True where the warm server can run: it forks, so POSIX with `os.fork` (not Windows)."""
    return hasattr(os, "fork") and sys.platform != "win32"


def argv(
    app: str,
    host: str,
    port: int,
    events: Path | str | None,
    workers: int = 1,
    restart: str = "on-failure",
) -> list[str]:
    """The command line that runs the warm server for `app` (`module:attr`) with this interpreter."""
    command = [sys.executable, "-m", "ops.warm_server", app, "--host", host, "--port", str(port)]
    if events is not None:
        command += ["--events", str(events)]
    return [*command, "--workers", str(workers), "--restart", restart]


def read_events(path: Path | str, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The events appended to `path` since byte `offset`, and the offset to read from next time.

    Only complete lines are taken (a line being written is left for the next call); a missing
    file is no events, and a file shorter than `offset` (started afresh) is read from the start.
    """
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            offset = 0 if size < offset else offset
            handle.seek(offset)
            data = handle.read(size - offset)
    except FileNotFoundError:
        return [], offset
    complete = data[: data.rfind(b"\n") + 1]
    events = []
    for line in complete.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # not ours, or torn by a crash: skip it
        if isinstance(event, dict):
            events.append(event)
    return events, offset + len(complete)
