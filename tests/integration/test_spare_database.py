"""The embedded backend's spare database (ops.backends.spare_database) on the wheel's real server.

Each test has its own XDG_CACHE_HOME, so the template is built here (the miss) and copied (the
hit), never taken from the real cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ops import cluster_pack, embedded_template
from ops.backends import spare_database
from ops.backends.embedded import SUPERUSER, EmbeddedBackend
from ops.platform import service_account
from tests.support.db import query
from tests.support.stacks import stack_settings

pytestmark = pytest.mark.usefixtures("own_initdb_cache")


@pytest.fixture
def started() -> Iterator[list[EmbeddedBackend]]:
    """Backends started by a test, stopped after it."""
    backends: list[EmbeddedBackend] = []
    yield backends
    for backend in backends:
        backend.stop()


def start(
    state_dir: Path, backends: list[EmbeddedBackend], **overrides: object
) -> tuple[EmbeddedBackend, str]:
    backend = EmbeddedBackend(stack_settings(state_dir, **overrides))
    backends.append(backend)
    return backend, backend.start().endpoint.url()


def superuser(backend: EmbeddedBackend) -> psycopg.Connection:
    port = backend.record.port
    return psycopg.connect(
        host=str(backend._socket_dir()), port=port, user=SUPERUSER, dbname="postgres", autocommit=True
    )


def databases(backend: EmbeddedBackend) -> set[str]:
    with superuser(backend) as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_database")}


def test_the_stack_gets_the_spare_renamed_with_its_extensions_on_a_miss_and_on_a_hit(tmp_path, started):
    for name in ("miss", "hit"):
        backend, url = start(tmp_path / name, started)
        assert databases(backend) == {"postgres", "template0", "template1", "homer"}  # no spare left
        rows = query(
            url, "SELECT extname FROM pg_extension WHERE extname IN ('vector', 'pg_trgm') ORDER BY 1"
        )
        assert rows == [("pg_trgm",), ("vector",)]
        owner = query(
            url, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        )
        assert owner == [("homer",)]
        query(url, "CREATE TABLE mine (id int)")  # the role owns the database, so public is its to use
        assert query(url, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'mine'") == [
            ("homer",)
        ]
    template = embedded_template.template(service_account())
    names = {entry[1] for entry in cluster_pack.read_manifest(template)["entries"]}  # under the spare's key
    assert "global/pg_filenode.map" in names
    assert "postmaster.opts" not in names  # the preparing start's options are not copied


def test_a_database_of_another_name_still_gets_the_spare(tmp_path, started):
    backend, url = start(tmp_path / "other", started, db_name="odyssey")
    assert databases(backend) == {"postgres", "template0", "template1", "odyssey"}
    assert query(url, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == [(1,)]


def test_ensure_database_keeps_creates_and_drops_the_spare_it_does_not_need(tmp_path, started):
    backend, _ = start(tmp_path / "ensure", started)
    with superuser(backend) as conn:
        conn.execute(f"CREATE DATABASE {spare_database.SPARE}")
        assert spare_database.ensure_database(conn, "homer", "homer") == "kept"
        assert spare_database.SPARE not in databases(backend)  # the stack's exists: the spare goes
        assert spare_database.ensure_database(conn, "iliad", "homer") == "created"  # no spare: CREATE
        assert spare_database.ensure_database(conn, "iliad", "homer") == "kept"
    assert {"homer", "iliad"} <= databases(backend)
