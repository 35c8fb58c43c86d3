"""The bench's scale section copies the Iliad whole: verses and words, so the word plans see the copies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, create_engine, pool, text

from app.embedding import default_embedder
from app.ingest import ingest
from app.search import SearchQuery, search
from ops.bench.scale import COPY_SLUG, scale_to
from ops.endpoint import Endpoint


@pytest.fixture
def copied(db_url: str) -> Iterator[Connection]:
    """The session's database with one copy of the Iliad, removed again afterwards."""
    ingest(db_url, "iliad")
    engine = create_engine(db_url, poolclass=pool.NullPool)
    try:
        scale_to(Endpoint.from_url(db_url), 2)
        with engine.connect() as conn:
            yield conn
    finally:
        with engine.begin() as conn:  # cascades to the copy's verses and words
            conn.execute(text("DELETE FROM work WHERE slug LIKE :like"), {"like": COPY_SLUG.format(n="%")})
            conn.execute(text("ANALYZE text_segment, token"))
        engine.dispose()


def test_a_copy_has_every_verse_and_word_of_the_iliad_and_the_word_plans_find_it(copied: Connection) -> None:
    counts = copied.execute(
        text(
            "SELECT w.slug, count(DISTINCT s.id), count(t.id) FROM work w"
            " JOIN text_segment s ON s.work_id = w.id LEFT JOIN token t ON t.segment_id = s.id"
            " WHERE w.slug IN ('iliad', :copy) GROUP BY w.slug"
        ),
        {"copy": COPY_SLUG.format(n=1)},
    ).all()
    copied.rollback()
    by_work = {slug: (verses, words) for slug, verses, words in counts}
    assert by_work["iliad"] == by_work[COPY_SLUG.format(n=1)], by_work
    assert by_work["iliad"][1] > 100_000
    hits = search(copied, SearchQuery("μῆνιν ἄειδε θεὰ", limit=2), default_embedder())
    copied.rollback()
    assert sorted((hit.work, hit.ref) for hit in hits) == [(COPY_SLUG.format(n=1), "1.1"), ("iliad", "1.1")]
