"""`invoke logs` on a terminal: the API's JSON log lines (one object a line) made readable.

    18:09:15.123 info  GET /search 200 3.21 ms  mode=text count=10  id=0b6f2c1e9a4d4e0f
    18:09:16.004 error homer.app: database unavailable  id=...
                 Traceback (most recent call last): ...   (an exc_info field, on its own lines)

A request line (logger `homer.request`, or any line with a `route` and a `status`) shows its method,
route, status, duration, mode and result count; any other JSON line its logger and message. The
request id is shown whole, to be searched for (`invoke logs -c api --json | jq`). A line that is not a
JSON object (an older API, LOG_FORMAT=text, a traceback, PostgreSQL's log) is shown as it is.
"""

from __future__ import annotations

import json
from typing import Any

from rich.color import ColorSystem
from rich.style import Style

LEVEL_COLOURS = {"debug": "bright_black", "warning": "yellow", "error": "red", "critical": "bold red"}
TRACEBACK_KEYS = ("exc_info", "exception", "stack_info")


def readable(line: str, colour: bool = False) -> str:
    """`line` made readable if it is one of the API's JSON log lines, else `line` itself."""
    record = _record(line)
    if record is None:
        return line
    level = str(record.get("level") or record.get("levelname") or "-").lower()
    shown = level.ljust(5)
    if colour and level in LEVEL_COLOURS:
        shown = Style.parse(LEVEL_COLOURS[level]).render(shown, color_system=ColorSystem.STANDARD)
    parts = [f"{_clock(record.get('time'))} {shown}", _request(record) or _message(record)]
    if record.get("request_id"):
        parts.append(f" id={record['request_id']}")
    text = " ".join(parts)
    for key in TRACEBACK_KEYS:
        if record.get(key):
            text += "\n" + str(record[key]).rstrip()
    return text


def _record(line: str) -> dict[str, Any] | None:
    if not line.lstrip().startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and ("message" in record or "status" in record) else None


def _clock(value: Any) -> str:
    """`18:09:15.123` of `2026-12-01T18:09:15.123Z` (the time as logged, UTC); the value as it is else."""
    text = str(value or "-")
    _, sep, clock = text.partition("T")
    return clock.rstrip("Z").split("+")[0] if sep else text


def _request(record: dict[str, Any]) -> str | None:
    """`GET /search 200 3.21 ms  mode=text count=10` for a request's line, None for any other."""
    if record.get("logger") != "homer.request" and not ("route" in record and "status" in record):
        return None
    line = f"{record.get('method', '-')} {record.get('route', '-')} {record.get('status', '-')}"
    duration = record.get("duration_ms")
    if isinstance(duration, int | float):
        line += f" {duration:.2f} ms"
    found = [f"{key}={record[key]}" for key in ("mode", "count") if record.get(key) is not None]
    return line + (f"  {' '.join(found)}" if found else "")


def _message(record: dict[str, Any]) -> str:
    logger = record.get("logger") or record.get("name")
    message = str(record.get("message", ""))
    return f"{logger}: {message}" if logger else message
