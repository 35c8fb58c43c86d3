"""Fixtures of the integration tests that several modules share."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
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


@pytest.fixture(scope="module")
def client(db_url: str) -> Iterator[TestClient]:
    """The app in-process on the session's database, both poems loaded (idempotent)."""
    from tests.support.app import client_for

    ingest(db_url, "all")
    with client_for(db_url) as client:
        yield client


@pytest.fixture
def search(client: TestClient) -> Callable[..., dict]:
    """GET /search with `q` and params, asserted 200; its JSON."""

    def run(q: str, **params: object) -> dict:
        response = client.get("/search", params={"q": q, **params})
        assert response.status_code == 200, response.text
        return response.json()

    return run
