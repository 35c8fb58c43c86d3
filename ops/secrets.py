"""Generating and hiding secrets: nothing the harness prints or saves shows a password."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
_DSN_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?=@)", re.I)
_ASSIGNED = re.compile(
    r"(?P<head>\b(?:PGPASSWORD|POSTGRES_PASSWORD|PGSSLPASSWORD|sslpassword|password)\s*[=:]\s*['\"]?)"
    r"(?P<pw>[^\s'\"&,]+)",
    re.I,
)


PASSWORD_KEYS = ("password", "reader_password")  # the owner's and the API reader's, in the state's `db`


def stack_passwords(db: Mapping[str, Any]) -> list[str]:
    """The stack's secrets recorded in the state file's `db` section, to mask in any output:
    the passwords, and a password or key passphrase among the DSN's parameters."""
    params = db.get("params") or {}
    found = [db.get(key) for key in PASSWORD_KEYS] + [params.get(key) for key in ("password", "sslpassword")]
    return [str(secret) for secret in found if secret]


def new_password() -> str:
    """A URL-safe random password (no characters that need quoting in a DSN)."""
    return secrets.token_urlsafe(24)


def mask_dsn(url: str) -> str:
    """`url` with its password replaced by ***."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return redact(url)
    # SQLAlchemy writes the password as ***; a password among the query parameters is masked too.
    return redact(parsed.render_as_string(hide_password=True))


def redact(text: str, known: Iterable[str] = ()) -> str:
    """Mask every known secret, every DSN password and every `PASSWORD=...` in `text`."""
    for secret in known:
        if secret:
            text = text.replace(secret, MASK)
    text = _DSN_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    return _ASSIGNED.sub(lambda m: m["head"] + MASK, text)


def redact_tree(value: Any, secrets: list[str]) -> Any:
    """`value` (JSON-like) with every string in it redacted."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: redact_tree(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(item, secrets) for item in value]
    return value
