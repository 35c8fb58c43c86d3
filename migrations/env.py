"""Alembic environment: sync psycopg driver, URL from the harness, never an async driver.

The harness (ops/migrate.py) hands over an open connection in `config.attributes`, so
that retrying happens once, at connection time, in one place. Run by hand, the URL
comes from the `sqlalchemy.url` option or DATABASE_URL.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from app.driver import with_driver

config = context.config


def _url() -> str:
    raw = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not raw:
        raise SystemExit("no database URL: set DATABASE_URL (see `invoke up` / .ops/state.json)")
    return with_driver(raw).render_as_string(hide_password=False)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), literal_binds=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
