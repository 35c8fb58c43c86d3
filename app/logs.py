"""The API's log: one JSON object a line on stderr (LOG_FORMAT=text: the same content for a human).

`configure` is a `logging.config.dictConfig` of the `homer` and `uvicorn` loggers, applied when
the app is created and again at lifespan start (uvicorn configures its own logging before it
imports the app, the warm server's children after), so it holds however uvicorn is started.
uvicorn's access log is off: the middleware's `homer.request` line replaces it. The root logger
gets the same handler only when it has no other (under uvicorn), so pytest's capture is left alone.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import IO, Any

from app.observe import RequestIdFilter

BASE_KEYS = ("time", "level", "logger", "message")


def _time(record: logging.LogRecord) -> str:
    """ISO 8601 UTC with milliseconds: 2026-12-01T18:09:15.123Z."""
    moment = datetime.fromtimestamp(record.created, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{int(record.msecs):03d}Z"


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The line's content: time, level, logger, message, request_id (in a request), the record's
    `fields` (extra={"fields": {...}}), and the traceback of an exception."""
    fields: dict[str, Any] = {
        "time": _time(record),
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": record.getMessage(),
    }
    request_id = getattr(record, "request_id", None)
    if request_id is not None:
        fields["request_id"] = request_id
    fields.update(getattr(record, "fields", None) or {})
    if record.exc_info:
        fields["exc_info"] = logging.Formatter().formatException(record.exc_info)
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(fields_of(record), ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger message key=value ...`, the traceback on the lines below."""

    def format(self, record: logging.LogRecord) -> str:
        fields = fields_of(record)
        traceback = fields.pop("exc_info", None)
        head = " ".join(str(fields.pop(key)) for key in BASE_KEYS)
        line = " ".join([head, *(f"{key}={value}" for key, value in fields.items())])
        return f"{line}\n{traceback}" if traceback else line


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def configure(log_format: str, stream: IO[str] | None = None) -> None:
    """Send the `homer` and `uvicorn` loggers to `stream` (stderr) in `log_format` (json or text)."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": log_format,
        "filters": ["request_id"],
        "stream": stream or sys.stderr,
    }
    quiet = {"handlers": [], "propagate": False, "level": "WARNING"}
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"request_id": {"()": RequestIdFilter}},
            "formatters": {name: {"()": cls} for name, cls in FORMATTERS.items()},
            "handlers": {"api": handler},
            "loggers": {
                "homer": {"handlers": ["api"], "level": "INFO", "propagate": False},
                "uvicorn": {"handlers": ["api"], "level": "INFO", "propagate": False},
                # uvicorn.error propagates to uvicorn, and keeps any handler of its own (the warm
                # server's child watches it for a failed start-up)
                "uvicorn.access": quiet,
            },
        }
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "api"]:
        root.removeHandler(old)
    if not root.handlers:
        root.addHandler(logging.getLogger("homer").handlers[0])
