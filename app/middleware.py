"""The outermost middleware: a request id, one `homer.request` log line and the metrics per request.

Pure ASGI, so that it costs a few microseconds: it keeps or replaces the client's X-Request-ID
(app/observe.py), echoes it in the response, holds it in a contextvar while the request runs, and
when the response has been sent logs `GET /search 200` with the route template (never the raw
path or query string, which could carry anything) and counts it in the app's `Metrics` (none
when METRICS=off). An exception no handler took becomes a 500 JSON body with the request id,
logged with its traceback by `homer.error`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import Metrics
from app.observe import CURRENT, RequestFacts, request_id_from, with_request_id

REQUEST_LOG = logging.getLogger("homer.request")
ERROR_LOG = logging.getLogger("homer.error")
UNMATCHED = "unmatched"


@dataclass
class Instruments:
    """The app's metrics, made at lifespan start (None when METRICS=off or before it)."""

    metrics: Metrics | None = None


class Observe:
    def __init__(self, app: ASGIApp, instruments: Instruments) -> None:
        self.app = app
        self.instruments = instruments

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name.lower() == b"x-request-id"), None)
        facts = RequestFacts(request_id_from(given))
        token = CURRENT.set(facts)
        began = time.perf_counter()
        sent: dict[str, Any] = {"status": 500, "started": False}
        echoed = (b"x-request-id", facts.request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent.update(status=message["status"], started=True)
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            ERROR_LOG.exception("unhandled error in %s %s", scope["method"], route_of(scope))
            sent["status"] = 500
            if not sent["started"]:
                body = with_request_id({"detail": "internal server error"})
                await JSONResponse(body, status_code=500)(scope, receive, send_with_id)
        finally:
            self.finish(scope, int(sent["status"]), time.perf_counter() - began, facts)
            CURRENT.reset(token)

    def finish(self, scope: Scope, status: int, seconds: float, facts: RequestFacts) -> None:
        """The request's log line and metrics."""
        method, route = scope["method"], route_of(scope)
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        if facts.mode is not None:
            fields.update(mode=facts.mode, count=facts.count)
        level = logging.ERROR if status >= 500 else logging.INFO
        REQUEST_LOG.log(level, "%s %s %s", method, route, status, extra={"fields": fields})
        if self.instruments.metrics is not None:
            self.instruments.metrics.record(route, method, status, seconds, facts)


def route_of(scope: Scope) -> str:
    """The template of the route that handled the request (`/passages/{work}/{ref}`), else `unmatched`
    (no route matched, or the request was refused before routing, e.g. a 413)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
