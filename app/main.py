"""FastAPI application: `app.main:app`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.db import get_engine, schema_head
from app.routes import router

app = FastAPI(
    title="Homer search",
    version="0.1.0",
    description="Accent-insensitive, typo-tolerant and vector search over Homer's Iliad and Odyssey.",
)
app.include_router(router)


@app.exception_handler(OperationalError)
@app.exception_handler(PoolTimeout)
async def database_unavailable(_request: Request, _exc: Exception) -> JSONResponse:
    """A database that is down or unreachable is a 503 with JSON, never a 500."""
    return JSONResponse(status_code=503, content={"detail": "database unavailable"})


@app.get("/health", tags=["ops"], responses={503: {"description": "database down or migrations pending"}})
def health() -> JSONResponse:
    """200 only when a real query succeeds and the schema is at head."""
    head = schema_head()
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except ProgrammingError:
        return _unhealthy("migrations pending: no alembic_version table", head, None)
    except (DBAPIError, PoolTimeout) as exc:
        reason = type(getattr(exc, "orig", exc) or exc).__name__
        return _unhealthy(f"database unreachable ({reason})", head, None)
    if current != head:
        return _unhealthy(f"migrations pending: schema at {current}, head is {head}", head, current)
    return JSONResponse({"status": "ok", "database": "ok", "schema": current})


def _unhealthy(reason: str, head: str | None, current: str | None) -> JSONResponse:
    return JSONResponse(
        status_code=503, content={"status": "unavailable", "reason": reason, "schema": current, "head": head}
    )
