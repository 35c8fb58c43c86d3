"""Fixtures of the integration tests that several modules share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, create_engine, pool

from app.ingest import ingest


@pytest.fixture(scope="module")
def both_poems(db_url: str) -> Iterator[Connection]:
    """A connection to the session's database with the Iliad and the Odyssey loaded (idempotent)."""
    ingest(db_url, "all")
    engine = create_engine(db_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        yield conn
    engine.dispose()
