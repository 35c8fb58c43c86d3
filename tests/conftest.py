"""Shared fixtures: a real PostgreSQL from the embedded backend, migrated to head; a copy of the project."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.backends.embedded import EmbeddedBackend
from ops.migrate import migrate
from ops.settings import build_settings
from tests.support.paths import PROJECT_DIR
from tests.support.project import Project, close_project, copy_project


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The harness's per-user cache (initdb template, remembered pull failures) for this session only;
    the `invoke` subprocesses of the e2e tests inherit it."""
    cache = tmp_path_factory.mktemp("cache")
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    yield cache
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBackend]:
    """One embedded PostgreSQL for the test session (its own state dir, a free port)."""
    state_dir = tmp_path_factory.mktemp("pg")
    settings = build_settings(PROJECT_DIR, flags={"state_dir": str(state_dir), "backend": "embedded"})
    backend = EmbeddedBackend(settings)
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture(scope="session")
def db_url(pg_server: EmbeddedBackend) -> str:
    """SQLAlchemy URL (postgresql+psycopg) of the app's role, schema at head."""
    started = pg_server.start()
    url = started.endpoint.url()
    migrate(PROJECT_DIR, url)
    return url


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A copy of the project (tests/support/project.py) for `invoke ...`; what it left running killed
    and `invoke down` after the test (used by tests/e2e, tests/faults and tests/docker)."""
    copy = copy_project(tmp_path / "project")
    yield copy
    close_project(copy)
