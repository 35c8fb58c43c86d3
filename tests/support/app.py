"""The FastAPI app in-process (a TestClient on a given database) and reading its search results."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from app import config, db
from app.main import app


def reset_app_caches() -> None:
    """Forget the app's settings and engine, closing the engine's pooled connections first."""
    for cached in (db.get_read_engine, db.get_engine):
        if cached.cache_info().currsize:
            cached().dispose()
        cached.cache_clear()
    config.get_settings.cache_clear()


@contextmanager
def client_for(database_url: str, **env: str) -> Iterator[TestClient]:
    """A TestClient whose app reads DATABASE_URL (and `env`) afresh; its engine disposed after."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", database_url)
        for name, value in env.items():
            patch.setenv(name, value)
        reset_app_caches()
        try:
            with TestClient(app) as client:
                yield client
        finally:
            reset_app_caches()


Search = Callable[..., dict]  # the `search` fixture (tests/integration/conftest.py): q and params -> JSON


def refs(result: dict) -> list[str]:
    return [f"{hit['work']} {hit['ref']}" for hit in result["hits"]]
