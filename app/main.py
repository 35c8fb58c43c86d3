"""FastAPI application: `app.main:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app import logs
from app.config import ObservabilitySettings, get_settings
from app.db import get_read_engine, schema_head
from app.metrics import CONTENT_TYPE, Metrics
from app.middleware import Instruments, Observe
from app.observe import note_db_failure, with_request_id
from app.replication import ROLE_SQL, role_of
from app.routes import router

MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_QUERY_STRING_BYTES = 8 * 1024


class RequestSizeLimit:
    """Pure ASGI middleware: refuse oversized requests before any route or database sees them.

    A declared body over `MAX_BODY_BYTES` is a 413, headers over `MAX_HEADER_BYTES` in all a
    431, a query string over `MAX_QUERY_STRING_BYTES` a 414, a malformed Content-Length a
    400, each with a JSON `detail`. (The routes are GETs that never read a body.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = _refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, detail = refusal
        await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


def _refusal(scope: Scope) -> tuple[int, str] | None:
    """(status, reason) if the request is too large or malformed, else None."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    if sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
        return 431, f"request headers larger than {MAX_HEADER_BYTES} bytes"
    if len(scope.get("query_string", b"")) > MAX_QUERY_STRING_BYTES:
        return 414, f"query string longer than {MAX_QUERY_STRING_BYTES} bytes"
    for name, value in headers:
        if name.lower() != b"content-length":
            continue
        if not value.strip().isdigit():
            return 400, "malformed Content-Length"
        if int(value) > MAX_BODY_BYTES:
            return 413, f"request body larger than {MAX_BODY_BYTES} bytes"
    return None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The log configured again (uvicorn may have configured its own since the import), and a fresh
    registry of metrics unless METRICS=off."""
    settings = ObservabilitySettings()
    logs.configure(settings.log_format)
    app.state.instruments.metrics = Metrics() if settings.metrics else None
    yield


logs.configure(ObservabilitySettings().log_format)  # before uvicorn's first lines: "Started server ..."
app = FastAPI(
    title="Homer search",
    version="0.1.0",
    description="Accent-insensitive, typo-tolerant and vector search over Homer's Iliad and Odyssey.",
    lifespan=lifespan,
)
app.state.instruments = Instruments()
app.include_router(router)
app.add_middleware(RequestSizeLimit)
app.add_middleware(Observe, instruments=app.state.instruments)  # outermost: refusals get an id too


@app.exception_handler(OperationalError)
@app.exception_handler(PoolTimeout)
async def database_unavailable(_request: Request, _exc: Exception) -> JSONResponse:
    """A database that is down or unreachable is a 503 with JSON, never a 500."""
    note_db_failure("unavailable")
    return JSONResponse(status_code=503, content=with_request_id({"detail": "database unavailable"}))


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own handler, with the request id in a 5xx body (the routes' 503s and 504s)."""
    if exc.status_code < 500:
        return await http_exception_handler(request, exc)
    body = with_request_id({"detail": exc.detail})
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


@app.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus text format (app/metrics.py); 404 when METRICS=off. Not in the OpenAPI document:
    it is not JSON."""
    instruments: Instruments = app.state.instruments
    if instruments.metrics is None:
        raise HTTPException(404, "metrics are off (METRICS=off)")
    return Response(instruments.metrics.scrape(), media_type=CONTENT_TYPE)


@app.get("/health", tags=["ops"], responses={503: {"description": "database down or migrations pending"}})
def health() -> JSONResponse:
    """200 only when a real query succeeds and the schema is at head; says which server the reads
    reach (primary or standby, and a standby's lag). Past REPLICA_LAG_DEGRADED_S of lag it is still
    200, with status "degraded": the replica answers, but with old data."""
    head = schema_head()
    try:
        with get_read_engine().connect() as conn:
            row = conn.execute(text(ROLE_SQL)).one()
            server = role_of(row, conn.connection.dbapi_connection.info)  # type: ignore[union-attr]
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except ProgrammingError:
        return _unhealthy("migrations pending: no alembic_version table", head, None)
    except (DBAPIError, PoolTimeout) as exc:
        reason = type(getattr(exc, "orig", exc) or exc).__name__
        return _unhealthy(f"database unreachable ({reason})", head, None)
    if current != head:
        return _unhealthy(f"migrations pending: schema at {current}, head is {head}", head, current)
    body = {"status": "ok", "database": "ok", "schema": current, **server.as_dict()}
    bound = get_settings().replica_lag_degraded_s
    if server.lag_s is not None and server.lag_s > bound:
        body.update(status="degraded", reason=f"replica lag {server.lag_s:.1f} s is over {bound:g} s")
    return JSONResponse(body)


def _unhealthy(reason: str, head: str | None, current: str | None) -> JSONResponse:
    note_db_failure("unavailable")
    body = {"status": "unavailable", "reason": reason, "schema": current, "head": head}
    return JSONResponse(status_code=503, content=with_request_id(body))
