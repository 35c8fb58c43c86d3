"""What the API knows about the request it is handling: its id, and what the route did.

The middleware (app/middleware.py) sets a `RequestFacts` in a contextvar for each request; the
routes add to it (`note_search`, `note_db_failure`), the log filter copies its id into every log
record, and the middleware turns it into the request's log line and metrics when the response
is sent. Sync routes run in a thread with a copy of the context, which holds the same object.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

DbFailure = Literal["unavailable", "timeout"]


@dataclass
class RequestFacts:
    request_id: str
    mode: str | None = None  # /search only
    read_as: str | None = None
    count: int | None = None
    db_failure: DbFailure | None = None  # a 503 the database caused, or a 504 (statement timeout)


CURRENT: ContextVar[RequestFacts | None] = ContextVar("homer_request", default=None)


def request_id_from(given: bytes | None) -> str:
    """The client's X-Request-ID when it is a short token (`[A-Za-z0-9._:-]{1,64}`), else a new one."""
    if given is not None:
        text = given.decode("latin-1")
        if _VALID_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    facts = CURRENT.get()
    return None if facts is None else facts.request_id


def note_search(mode: str, read_as: str, count: int) -> None:
    """What /search did, for its log line and homer_searches_total."""
    facts = CURRENT.get()
    if facts is not None:
        facts.mode, facts.read_as, facts.count = mode, read_as, count


def note_db_failure(kind: DbFailure) -> None:
    """The database made this request a 503 ("unavailable") or a 504 ("timeout")."""
    facts = CURRENT.get()
    if facts is not None:
        facts.db_failure = kind


def with_request_id(body: Mapping[str, object]) -> dict[str, object]:
    """A 5xx JSON body with the request's id, so that a report can be matched with the log."""
    request_id = current_request_id()
    return dict(body) if request_id is None else {**body, "request_id": request_id}


class RequestIdFilter(logging.Filter):
    """Gives every record the id of the request being handled (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True
