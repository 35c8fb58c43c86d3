"""The search statements use the trigram GIN and HNSW indexes (EXPLAIN on the loaded database)."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection

from app.embedding import default_embedder
from app.search import Mode, SearchQuery, search
from tests.support.plans import plan_of

TRIGRAM_INDEX = "Bitmap Index Scan on ix_text_form_text_fold_trgm"  # the distinct texts' index
VECTOR_INDEX = "Index Scan using ix_text_segment_emb_hnsw"


@pytest.fixture(scope="module")
def conn(both_poems: Connection) -> Connection:
    return both_poems


@pytest.mark.parametrize("work", [None, "iliad"])
def test_text_search_goes_through_the_trigram_index(conn: Connection, work: str | None) -> None:
    text_plan = plan_of(conn, SearchQuery("μηνιν αειδε", Mode.text, work=work))
    assert TRIGRAM_INDEX in text_plan
    assert "Index Cond: (text_fold %> 'μηνιν αειδε'::text)" in text_plan
    assert "Seq Scan" not in text_plan


def test_vector_search_goes_through_the_hnsw_index(conn: Connection) -> None:
    vector_plan = plan_of(conn, SearchQuery("μηνιν αειδε", Mode.vector))
    assert VECTOR_INDEX in vector_plan
    assert "Seq Scan on text_segment" not in vector_plan


def test_hybrid_search_uses_both_indexes_in_one_statement(conn: Connection) -> None:
    hybrid_plan = plan_of(conn, SearchQuery("μηνιν αειδε", Mode.hybrid))
    assert TRIGRAM_INDEX in hybrid_plan and VECTOR_INDEX in hybrid_plan
    assert "Seq Scan" not in hybrid_plan


def test_thresholds_last_only_for_the_transaction(conn: Connection) -> None:
    search(conn, SearchQuery("μηνιν αειδε", Mode.hybrid), default_embedder())
    inside = [
        conn.exec_driver_sql(f"SHOW {name}").scalar()
        for name in ("pg_trgm.word_similarity_threshold", "enable_seqscan")
    ]
    conn.rollback()
    after = [
        conn.exec_driver_sql(f"SHOW {name}").scalar()
        for name in ("pg_trgm.word_similarity_threshold", "enable_seqscan")
    ]
    conn.rollback()
    assert (inside, after) == (["0.5", "off"], ["0.6", "on"])
