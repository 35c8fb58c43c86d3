"""Generating and hiding secrets: nothing the harness prints or saves shows a password."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.engine import make_url

MASK = "***"
_DSN_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?=@)", re.I)
_ASSIGNED = re.compile(
    r"(?P<head>\b(?:PGPASSWORD|POSTGRES_PASSWORD|password)\s*[=:]\s*['\"]?)(?P<pw>[^\s'\"&,]+)",
    re.I,
)


PASSWORD_KEYS = ("password", "reader_password")  # the owner's and the API reader's, in the state's `db`


def stack_passwords(db: Mapping[str, Any]) -> list[str]:
    """The stack's passwords recorded in the state file's `db` section, to mask in any output."""
    return [str(db[key]) for key in PASSWORD_KEYS if db.get(key)]


def new_password() -> str:
    """A URL-safe random password (no characters that need quoting in a DSN)."""
    return secrets.token_urlsafe(24)


def mask_dsn(url: str) -> str:
    """`url` with its password replaced by ***."""
    try:
        parsed = make_url(url)
    except Exception:
        return redact(url)
    return parsed.render_as_string(hide_password=True)  # SQLAlchemy writes the password as ***


def redact(text: str, known: Iterable[str] = ()) -> str:
    """Mask every known secret, every DSN password and every `PASSWORD=...` in `text`."""
    for secret in known:
        if secret:
            text = text.replace(secret, MASK)
    text = _DSN_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    return _ASSIGNED.sub(lambda m: m["head"] + MASK, text)
