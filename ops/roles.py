"""The API's least-privilege role: `<owner>_reader`, which may only read the search tables.

Migrations, ingest and the seed use the owner role (`settings.db_user`); the API process
connects as the reader, which can SELECT from the tables in schema `public` and nothing
else: no INSERT/UPDATE/DELETE, no DDL, not a superuser, not a member of the owner.

Creating (or re-keying) a login role needs a superuser: the embedded backend does it
through its superuser socket while provisioning; with Docker the owner *is* a superuser
(POSTGRES_USER in the image), so `ensure_reader` does it itself. The grants are made by the
owner after migrations, and `ALTER DEFAULT PRIVILEGES` covers tables created later.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ops.endpoint import Endpoint
from ops.errors import DatabaseError, first_line
from ops.secrets import redact

if TYPE_CHECKING:  # psycopg is imported where it is used: a cold `up` spawns uvicorn first
    import psycopg

READER_SUFFIX = "_reader"


def reader_name(owner: str) -> str:
    """The reader role of an owner role: `homer` -> `homer_reader`."""
    return f"{owner}{READER_SUFFIX}"


def upsert_login_role(conn: psycopg.Connection, role: str, password: str) -> None:
    """Create `role` as a plain login role with `password`, or reset an existing one to that.

    `conn` must be a superuser's (autocommit) connection.
    """
    from psycopg import sql

    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    conn.execute(
        sql.SQL(
            "{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {}"
        ).format(sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(role), sql.Literal(password))
    )


def grant_read_only(conn: psycopg.Connection, owner: str, reader: str) -> None:
    """As the owner: the reader may use schema public and SELECT its tables, now and later."""
    from psycopg import sql

    ident = {"owner": sql.Identifier(owner), "reader": sql.Identifier(reader)}
    statements = [
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        "GRANT USAGE ON SCHEMA public TO {reader}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT SELECT ON TABLES TO {reader}",
    ]
    for statement in statements:
        conn.execute(sql.SQL(statement).format(**ident))


def ensure_reader(owner: Endpoint, reader_password: str) -> Endpoint:
    """Make the reader role exist with `reader_password` and read-only grants; return its endpoint.

    Connects as the owner. If the owner is a superuser (Docker) the role is created or
    re-keyed here; otherwise it must already exist (the embedded backend provisions it).
    """
    import psycopg

    reader = reader_name(owner.user)
    try:
        with psycopg.connect(**owner.connect_kwargs(timeout=5), autocommit=True) as conn:
            if _is_superuser(conn):
                upsert_login_role(conn, reader, reader_password)
            elif not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (reader,)).fetchone():
                raise DatabaseError(
                    f"the read-only role {reader!r} does not exist and {owner.user!r} may not create it",
                    "create it as a superuser, or run `invoke up` with a backend that provisions it",
                )
            grant_read_only(conn, owner.user, reader)
    except psycopg.Error as exc:
        reason = redact(first_line(exc), [owner.password, reader_password])
        raise DatabaseError(f"could not set up the read-only role {reader!r}: {reason}") from None
    return replace(owner, user=reader, password=reader_password)


def _is_superuser(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])
