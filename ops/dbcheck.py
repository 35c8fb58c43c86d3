"""Readiness by the app's own path: its driver, role, database and TCP endpoint.

psycopg is imported in the functions that use it: a cold `up` spawns uvicorn before anything
here needs the driver, and the import (~35 ms) then overlaps the API's own start.
"""

from __future__ import annotations

from collections.abc import Callable

from ops.endpoint import Endpoint
from ops.errors import DatabaseError, first_line
from ops.extensions import REQUIRED_EXTENSIONS
from ops.secrets import redact
from ops.servers import failures
from ops.waiting import STANDBY_ONLY_MESSAGES, WaitPolicy, retry_call

TLS_MARKERS = ("SSL", "certificate", "no encryption")


def check_ready(endpoint: Endpoint, timeout: int = 2) -> str:
    """Connect as the app would, run SELECT 1 and check the extensions can be used.

    Raises psycopg errors (the caller's retry decides which are transient) or
    DatabaseError when the server answers but lacks an extension.
    """
    import psycopg

    with psycopg.connect(**endpoint.connect_kwargs(timeout)) as conn:
        conn.execute("SELECT 1").fetchone()
        rows = conn.execute(
            "SELECT name, installed_version FROM pg_available_extensions WHERE name = ANY(%s)",
            (list(REQUIRED_EXTENSIONS),),
        ).fetchall()
        reached = f" (reached {conn.info.host}:{conn.info.port})" if endpoint.more_hosts else ""
    found = {name: installed for name, installed in rows}
    missing = [name for name in REQUIRED_EXTENSIONS if name not in found]
    if missing:
        raise DatabaseError(
            f"PostgreSQL at {endpoint.where} lacks the extension(s) {', '.join(missing)}",
            "use an image with pgvector and pg_trgm (e.g. pgvector/pgvector:pg18)",
        )
    installed = ", ".join(f"{name} {found[name] or '(available)'}" for name in REQUIRED_EXTENSIONS)
    return f"SELECT 1 ok as {endpoint.user}@{endpoint.where}/{endpoint.database}{reached}; {installed}"


def wait_ready(endpoint: Endpoint, policy: WaitPolicy, alive: Callable[[], None]) -> tuple[str, int]:
    """check_ready, retried on transient errors only; returns (detail, attempts).

    A refused connection or a starting server is retried until the policy's bounds;
    bad credentials, a missing database or anything else fails at once.
    """
    import psycopg

    try:
        return retry_call(lambda: check_ready(endpoint), policy, alive)
    except psycopg.Error as exc:
        reason = redact(failures(exc) if endpoint.more_hosts else first_line(exc), [endpoint.password])
        where = f"{endpoint.user}@{endpoint.where}/{endpoint.database}"
        raise DatabaseError(f"cannot connect as the app ({where}): {reason}", _hint(reason)) from None


def _hint(reason: str) -> str:
    if any(marker in reason for marker in STANDBY_ONLY_MESSAGES):
        return "no host is a read-write server, only standbys answer: promote one, or check the DSN's hosts"
    if any(marker in reason for marker in TLS_MARKERS):
        return "check sslrootcert and the server's certificate; a TLS failure is never retried or weakened"
    return "check the stack's credentials and that PostgreSQL runs (`invoke status`, `invoke logs -c db`)"


def schema_revision(endpoint: Endpoint, timeout: int = 2) -> str | None:
    """The Alembic revision the database is at (None when unmigrated)."""
    import psycopg

    with psycopg.connect(**endpoint.connect_kwargs(timeout)) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None
