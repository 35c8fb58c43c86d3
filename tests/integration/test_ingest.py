"""app.ingest against the session's real PostgreSQL: counts, idempotence, transactions, the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, pool, text

from app.catalog import WORKS
from app.folding import fold, tokenize
from app.ingest import DATA_DIR, IngestError, ingest, parse_work

PROJECT_DIR = Path(__file__).resolve().parents[2]
ILIAD = DATA_DIR / WORKS["iliad"].filename
ODYSSEY = DATA_DIR / WORKS["odyssey"].filename
HNSW = "ix_text_segment_emb_hnsw"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url, poolclass=pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def empty(db_url: str, engine: Engine) -> str:
    """The session database with no texts in it (this test's own starting state)."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE language, work, text_segment, token RESTART IDENTITY CASCADE"))
    return db_url


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql), params)]


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything an ingest could change: row counts, ids, verse texts, the vector index."""
    return {
        "counts": rows(
            engine,
            "SELECT (SELECT count(*) FROM language), (SELECT count(*) FROM work),"
            " (SELECT count(*) FROM text_segment), (SELECT count(*) FROM token),"
            " (SELECT max(id) FROM text_segment), (SELECT max(id) FROM token)",
        ),
        "verses": rows(engine, "SELECT urn, md5(text || text_fold), deleted FROM text_segment ORDER BY urn"),
        "indexes": indexes(engine),
    }


def indexes(engine: Engine) -> list[tuple[Any, ...]]:
    return rows(
        engine,
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('text_segment', 'token') ORDER BY 1",
    )


def per_book(engine: Engine, slug: str) -> dict[int, int]:
    found = rows(
        engine,
        "SELECT s.book, count(*) FROM text_segment s JOIN work w ON w.id = s.work_id"
        " WHERE w.slug = :slug GROUP BY s.book",
        slug=slug,
    )
    return dict(found)  # type: ignore[arg-type]


def test_books_are_stored_with_refs_urns_folds_vectors_and_tokens(empty: str, engine: Engine) -> None:
    expected = parse_work(ILIAD, books=range(1, 3)).verses
    report = ingest(empty, "iliad", range(1, 3))

    assert (report.works, report.parsed, report.inserted, report.skipped) == (("iliad",), 1488, 1488, 0)
    assert len(expected) == 611 + 877
    assert per_book(engine, "iliad") == {1: 611, 2: 877}
    assert report.tokens == sum(len(tokenize(v.text)) for v in expected)
    assert rows(engine, "SELECT count(*) FROM token") == [(report.tokens,)]

    [first] = rows(
        engine,
        "SELECT s.ref, s.urn, s.text, s.text_fold, s.deleted, round(vector_norm(s.emb)::numeric, 5),"
        "       w.urn, w.title, l.code"
        " FROM text_segment s JOIN work w ON w.id = s.work_id JOIN language l ON l.id = w.language_id"
        " WHERE w.slug = 'iliad' AND s.book = 1 AND s.line = 1",
    )
    assert first == (
        "1.1",
        "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2:1.1",
        "μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος",
        "μηνιν αειδε θεα πηληιαδεω αχιληοσ",
        False,
        1,
        WORKS["iliad"].urn,
        "Iliad",
        "grc",
    )
    tokens = rows(
        engine,
        "SELECT t.position, t.surface, t.fold FROM token t JOIN text_segment s ON s.id = t.segment_id"
        " WHERE s.urn = :urn ORDER BY t.position",
        urn="urn:cts:greekLit:tlg0012.tlg001.perseus-grc2:1.2",
    )
    assert tokens == [
        (t.position, t.surface, t.fold) for t in tokenize("οὐλομένην, ἣ μυρίʼ Ἀχαιοῖς ἄλγεʼ ἔθηκε,")
    ]
    stored_folds = rows(engine, "SELECT text, text_fold FROM text_segment")
    assert all(fold(raw) == folded for raw, folded in stored_folds)


def test_second_run_changes_nothing(empty: str, engine: Engine) -> None:
    ingest(empty, "odyssey", range(1, 2))
    before = snapshot(engine)

    again = ingest(empty, "odyssey", range(1, 2))

    assert (again.inserted, again.skipped, again.tokens) == (0, 444, 0)
    assert snapshot(engine) == before
    duplicates = rows(
        engine, "SELECT count(*) FROM (SELECT urn FROM text_segment GROUP BY urn HAVING count(*) > 1) d"
    )
    assert duplicates == [(0,)]


def test_whole_iliad_then_all_adds_only_what_is_missing(empty: str, engine: Engine) -> None:
    indexes_before = indexes(engine)
    ingest(empty, "iliad", range(1, 2))

    iliad = ingest(empty, "iliad")
    both = ingest(empty, "all")

    assert (iliad.inserted, iliad.skipped) == (15686 - 611, 611)
    assert (both.works, both.inserted, both.skipped) == (("iliad", "odyssey"), 12107, 15686)
    assert sum(per_book(engine, "iliad").values()) == 15686
    assert sum(per_book(engine, "odyssey").values()) == len(parse_work(ODYSSEY).verses)
    # the bulk loads rebuilt the search indexes: same definitions, valid, every row has a vector
    assert indexes(engine) == indexes_before
    assert {HNSW, "ix_text_segment_text_fold_trgm", "ix_token_fold_rank"} <= {
        name for name, _ in indexes_before
    }
    assert rows(
        engine, "SELECT indisvalid FROM pg_index WHERE indexrelid = CAST(:name AS regclass)", name=HNSW
    ) == [(True,)]
    assert rows(engine, "SELECT count(*) FROM text_segment WHERE emb IS NULL") == [(0,)]


def test_deleted_verses_are_stored_and_marked(empty: str, engine: Engine) -> None:
    ingest(empty, "iliad", range(8, 9))
    deleted = rows(engine, "SELECT ref FROM text_segment WHERE deleted ORDER BY line")
    assert deleted == [("8.548",), ("8.550",), ("8.551",), ("8.552",)]


def test_truncated_xml_is_an_ingest_error_and_writes_nothing(
    empty: str, engine: Engine, tmp_path: Path
) -> None:
    ingest(empty, "iliad", range(1, 2))
    before = snapshot(engine)
    shutil.copy(ILIAD, tmp_path / ILIAD.name)
    (tmp_path / ODYSSEY.name).write_bytes(ODYSSEY.read_bytes()[:300_000])

    with pytest.raises(IngestError) as caught:
        ingest(empty, "all", data_dir=tmp_path)

    assert ODYSSEY.name in str(caught.value)
    assert "line" in str(caught.value) and "column" in str(caught.value)
    assert snapshot(engine) == before


def test_failure_while_writing_rolls_back_everything(empty: str, engine: Engine) -> None:
    ingest(empty, "odyssey", range(24, 25))
    before = snapshot(engine)

    def fail_after_iliad(message: str) -> None:
        if message.startswith("iliad: inserted"):
            raise RuntimeError("simulated failure in the middle of the transaction")

    # enough new rows to take the drop-and-rebuild path for the search indexes
    with pytest.raises(RuntimeError, match="simulated failure"):
        ingest(empty, "all", range(1, 3), progress=fail_after_iliad)

    assert snapshot(engine) == before  # no Iliad verses, and the dropped indexes are back


def test_unknown_work_is_an_ingest_error(empty: str) -> None:
    with pytest.raises(IngestError, match="unknown work 'aeneid'"):
        ingest(empty, "aeneid")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.ingest", *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_command_line_ingests_once_and_reports(empty: str, tmp_path: Path) -> None:
    first = run_cli("--work", "odyssey", "--books", "2", "--database-url", empty)
    second = run_cli("--work", "odyssey", "--books", "2-2", "--database-url", empty, "--quiet")

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("odyssey: 434 verses inserted, 0 already present")
    assert "odyssey: parsed 434 verses in 1 books" in first.stderr
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("odyssey: 0 verses inserted, 434 already present")
    assert second.stderr == ""


def test_command_line_reports_bad_input(empty: str, tmp_path: Path) -> None:
    (tmp_path / ILIAD.name).write_text("<TEI><text>", encoding="utf-8")

    broken = run_cli("--data-dir", str(tmp_path), "--database-url", empty)
    bad_books = run_cli("--books", "3-1", "--database-url", empty)

    assert broken.returncode == 1
    assert f"ingest failed: {tmp_path / ILIAD.name}: malformed XML at line 1" in broken.stderr
    assert bad_books.returncode == 2
    assert "need 1 <= first <= last" in bad_books.stderr
