"""GET /health once, with the standard library only (cheap to import: the no-op path uses it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Health:
    status: int | None  # HTTP status, None when nothing answered
    body: str


def probe(url: str, timeout: float = 1.0) -> Health:
    """GET {url}/health once, never raising."""
    return get_once(url, "/health", timeout, limit=500)


def served_schema(url: str) -> tuple[int | None, str | None]:
    """(status, schema) of GET {url}/health, never raising: the revision the API read from its
    database (its `/health` is 200 only when that is the API's own head)."""
    health = probe(url)
    try:
        body = json.loads(health.body or "{}")
    except ValueError:
        return health.status, None
    return health.status, body.get("schema") if isinstance(body, dict) else None


def get_once(url: str, path: str, timeout: float, limit: int) -> Health:
    """GET {url}{path} once, bounded by `timeout`, never raising: the status and the first `limit`
    bytes of the body (None and the error's name when nothing answered)."""
    import http.client  # here, not at import: a cold `up` needs it only once the API is spawned

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return Health(response.status, response.read(limit).decode("utf-8", errors="replace"))
    except (OSError, http.client.HTTPException) as exc:
        return Health(None, type(exc).__name__)
    finally:
        connection.close()
