"""The service's database engine (sync psycopg driver) and schema-head lookup."""

from __future__ import annotations

from functools import lru_cache

# The dialect create_engine would otherwise import in the first request (~50 ms of the first
# /health): loaded with the app instead, while a harness is still migrating.
import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401
from sqlalchemy import Engine, create_engine

from app.config import get_settings
from app.driver import with_driver
from app.schema_head import read_head


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The pool on DATABASE_URL; every libpq parameter (TLS, several hosts, options, ...) reaches
    each connection. Pooled connections are pinged before use, so after a failover those to the
    dead server are dropped and new ones reach whichever server `target_session_attrs` asks for."""
    return _engine(get_settings().database_url)


@lru_cache(maxsize=1)
def get_read_engine() -> Engine:
    """Where searches read: READ_DATABASE_URL (a replica) when it is set, else DATABASE_URL's pool."""
    settings = get_settings()
    return _engine(settings.read_database_url) if settings.read_database_url else get_engine()


def _engine(database_url: str) -> Engine:
    settings = get_settings()
    url = with_driver(database_url)
    given = {key: str(value) for key, value in url.query.items()}
    timeout = f"-c statement_timeout={settings.statement_timeout_ms}"
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=8,
        max_overflow=4,
        pool_timeout=5,
        connect_args={
            "connect_timeout": given.get("connect_timeout", settings.connect_timeout_s),
            # the URL's own options first; the service's statement timeout last, so it holds
            "options": " ".join(filter(None, [given.get("options"), timeout])),
            "application_name": given.get("application_name", "homer-api"),
        },
    )


@lru_cache(maxsize=1)
def schema_head() -> str | None:
    """The head revision of the migrations shipped with this code (app/schema_head.py)."""
    return read_head()
