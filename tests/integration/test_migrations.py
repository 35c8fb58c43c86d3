"""The Alembic chain on a real PostgreSQL: up to head, down to base, and back."""

from __future__ import annotations

import itertools
import threading

import pytest

from ops.backends.embedded import EmbeddedBackend
from ops.errors import MigrationError, UsageError
from ops.migrate import head_revision, migrate
from ops.waiting import WaitPolicy
from tests.support.db import query
from tests.support.paths import PROJECT_DIR
from tests.support.stacks import stack_settings

OLD_CHAIN = ["8144e6c26432", "94f9767a55ea", "a1f23b4c5d6e", "3c0e8fb40e2c", "3a1c83d19243"]


@pytest.fixture
def server(tmp_path):
    backend = EmbeddedBackend(stack_settings(tmp_path))
    started = backend.start()
    yield backend, started.endpoint.url()
    backend.stop()


def tables(url):
    rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    return {name for (name,) in rows}


def test_upgrade_to_head_then_downgrade_to_base_and_back(server, tmp_path):
    _, url = server
    log = tmp_path / "migrate.log"
    result = migrate(PROJECT_DIR, url, log_file=log)
    assert (result.before, result.after, result.direction) == (None, head_revision(PROJECT_DIR), "up")
    assert {"language", "work", "text_segment", "token", "alembic_version"} <= tables(url)
    for old, new in itertools.pairwise(OLD_CHAIN):
        assert f"Running upgrade {old} -> {new}" in log.read_text()
    indexes = {name for (name,) in query(url, "SELECT indexname FROM pg_indexes WHERE schemaname='public'")}
    assert {"ix_text_segment_emb_hnsw", "ix_text_segment_text_fold_trgm", "uq_language_code"} <= indexes
    assert "ix_language_code" not in indexes  # the redundant index is gone, the constraint stays

    down = migrate(PROJECT_DIR, url, "base")
    assert (down.after, down.direction) == (None, "down")
    assert tables(url) <= {"alembic_version"}

    again = migrate(PROJECT_DIR, url)
    assert again.after == head_revision(PROJECT_DIR)


def test_database_migrated_by_the_old_project_upgrades_cleanly(server):
    _, url = server
    migrate(PROJECT_DIR, url, "a1f23b4c5d6e")  # where the old project's chain stood mid-way
    assert query(url, "SELECT version_num FROM alembic_version") == [("a1f23b4c5d6e",)]
    assert migrate(PROJECT_DIR, url).after == head_revision(PROJECT_DIR)


def test_head_again_is_a_no_op(server):
    _, url = server
    migrate(PROJECT_DIR, url)
    assert migrate(PROJECT_DIR, url).direction == "none"


def test_unknown_revision_is_a_usage_error(server):
    _, url = server
    with pytest.raises(UsageError, match="unknown revision 'nope'"):
        migrate(PROJECT_DIR, url, "nope")


def test_wrong_password_fails_at_once_without_retrying(server):
    backend, url = server
    bad = url.replace(url.split(":")[2].split("@")[0], "wrong-password")
    before = backend.log_path.read_text().count("password authentication failed")
    with pytest.raises(MigrationError, match="password authentication failed"):
        migrate(PROJECT_DIR, bad, policy=WaitPolicy(attempts=50, timeout=30, wait_initial=0, wait_max=0))
    after = backend.log_path.read_text().count("password authentication failed")
    assert after - before == 1  # the server saw one attempt, not fifty


def test_connection_is_retried_until_the_server_comes_back(server):
    backend, url = server
    backend.stop()
    restart = threading.Timer(0.6, backend.start)
    restart.start()
    try:
        result = migrate(PROJECT_DIR, url, policy=WaitPolicy(attempts=500, timeout=20, wait_initial=0.05))
    finally:
        restart.join()
    assert result.attempts > 1
    assert result.after == head_revision(PROJECT_DIR)


def test_text_form_holds_every_text_whoever_writes_the_verses(server):
    """The triggers keep text_form (the fuzzy scan's distinct texts) a superset of text_segment's."""
    _, url = server
    migrate(PROJECT_DIR, url)
    query(url, "INSERT INTO language (code, name) VALUES ('grc', 'Ancient Greek') ON CONFLICT DO NOTHING")
    query(
        url,
        "INSERT INTO work (slug, urn, title, author, language_id)"
        " SELECT 'hymns', 'urn:test:hymns', 'Hymns', 'Homer', id FROM language WHERE code = 'grc'",
    )
    verse = (
        "INSERT INTO text_segment (work_id, book, line, ref, urn, text, text_fold)"
        " SELECT id, 1, %s, '1.' || %s, 'urn:test:hymns:1.' || %s, %s, %s FROM work WHERE slug = 'hymns'"
    )
    for line, fold in ((1, "μουσα μοι"), (2, "μουσα μοι")):  # the same text twice: one form
        query(url, verse, (line, line, line, fold, fold))
    query(url, "UPDATE text_segment SET text_fold = 'αφροδιτησ εργα' WHERE line = 2")
    forms = {fold for (fold,) in query(url, "SELECT text_fold FROM text_form")}
    assert {"μουσα μοι", "αφροδιτησ εργα"} <= forms
    assert query(url, "SELECT count(*) FROM text_form WHERE text_fold = 'μουσα μοι'") == [(1,)]
    down = migrate(PROJECT_DIR, url, "c4e6a8b0d2f3")
    assert down.direction == "down" and "text_form" not in tables(url)
    query(
        url,
        "INSERT INTO text_segment (work_id, book, line, ref, urn, text, text_fold)"
        " SELECT id, 1, 3, '1.3', 'urn:test:hymns:1.3', 'x', 'x' FROM work WHERE slug = 'hymns'",
    )  # no trigger left
