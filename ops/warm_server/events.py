"""The warm server's events: a JSON line each in the events file, and a human line on stderr.

Every record has `event` and `time` (unix seconds) and the event's fields, e.g.
`{"event": "reloaded", "time": ..., "seconds": 0.21, "pids": [4242], "generation": 2}`. The
events: preloaded, ready, reloaded, reload_failed, retired, child_exited, restarted, gave_up, stopped.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


class Events:
    """Appends (and flushes) each event to the file, if any, and says it in one line on stderr."""

    def __init__(self, path: Path | None) -> None:
        self.handle = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115  (lives as long)

    def emit(self, event: str, line: str, **fields: Any) -> None:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        if self.handle is not None:
            self.handle.write(json.dumps(record) + "\n")
            self.handle.flush()
        print(f"warm: {line}", file=sys.stderr, flush=True)
