"""Talking to a stack's database: one statement as the app's role, the URLs that reach it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import psycopg

from tests.support.project import Project, read_state


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement as the app's role (URL in SQLAlchemy form) and return its rows."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def state_db_url(state: dict[str, Any]) -> str:
    """The app role's libpq URL from a state file's `db` record (TCP on 127.0.0.1)."""
    db = state["db"]
    return f"postgresql://{db['user']}:{db['password']}@127.0.0.1:{db['port']}/{db['database']}"


def sql(project: Project, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement as the app's role, with the credentials from the state file."""
    return query(state_db_url(read_state(project)), statement)


def libpq_url(user: str, password: str, host: str, port: int, database: str, **params: Any) -> str:
    """`postgresql://user:pw@host:port/db?k=v&...`, every part URL-quoted (None values dropped)."""
    netloc_host = f"[{host}]" if ":" in host else host
    url = f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{netloc_host}:{int(port)}"
    url += f"/{quote(database, safe='')}"
    query = {key: str(value) for key, value in params.items() if value is not None}
    return f"{url}?{urlencode(query, quote_via=quote)}" if query else url
