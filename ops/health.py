"""GET /health once, with the standard library only (cheap to import: the no-op path uses it)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Health:
    status: int | None  # HTTP status, None when nothing answered
    body: str


def probe(url: str, timeout: float = 1.0) -> Health:
    """GET {url}/health once, never raising."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        return Health(response.status, response.read(500).decode("utf-8", errors="replace"))
    except (OSError, http.client.HTTPException) as exc:
        return Health(None, type(exc).__name__)
    finally:
        connection.close()
