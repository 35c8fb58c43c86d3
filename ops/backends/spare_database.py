"""A database made ahead of time in the embedded backend's initdb template, renamed into place.

`CREATE DATABASE` copies template1 block by block through the WAL, and `CREATE EXTENSION vector`
loads the extension's script: together about 100 ms of every cold `up`, on its critical path.
The template is made once per wheel version, so the work is done there instead: a database
named SPARE, holding REQUIRED_EXTENSIONS, is created in the fresh cluster before it is saved,
and provisioning renames it to the stack's database and gives it to the stack's role (both
catalogue updates). A cluster without the spare (initialised without the cache, or from an older
template) gets `CREATE DATABASE` as before. The spare never outlives provisioning: a stack whose
database already exists drops it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ops.extensions import REQUIRED_EXTENSIONS

if TYPE_CHECKING:
    import psycopg

SPARE = "homer_ops_spare"


def create_spare(conninfo: str) -> None:
    """As the superuser (`conninfo` names no database): the spare database and its extensions."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(conninfo, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SPARE)))
    with psycopg.connect(conninfo, dbname=SPARE, autocommit=True) as conn:
        for extension in REQUIRED_EXTENSIONS:
            conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(extension)))


def ensure_database(conn: psycopg.Connection, database: str, owner: str) -> str:
    """Make `database` exist, owned by `owner`: kept, renamed from the spare, or created; say which.

    `conn` is the superuser's autocommit connection to another database (`postgres`).
    """
    from psycopg import sql

    found = conn.execute("SELECT datname FROM pg_database WHERE datname IN (%s, %s)", (database, SPARE))
    names = {row[0] for row in found}
    target, spare = sql.Identifier(database), sql.Identifier(SPARE)
    if database in names:
        if SPARE in names and database != SPARE:
            conn.execute(sql.SQL("DROP DATABASE {}").format(spare))
        return "kept"
    if SPARE in names:
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(spare, target))
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(target, sql.Identifier(owner)))
        return "renamed"
    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(target, sql.Identifier(owner)))
    return "created"
