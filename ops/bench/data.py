"""Section 3: the whole Iliad's ingest rate, and how long the search indexes take to build.

Index build: the search indexes are dropped and built again in one transaction, as a bulk
ingest does (`app.ingest.search_indexes_paused`, definitions read from the catalogue).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, pool, text

from app.ingest import search_indexes_paused
from ops.endpoint import Endpoint
from ops.ingest import load


@contextmanager
def owner_engine(endpoint: Endpoint) -> Iterator[Engine]:
    engine = create_engine(endpoint.url(), poolclass=pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def ingest_figures(endpoint: Endpoint) -> dict[str, Any]:
    """`invoke ingest`'s own code on the whole Iliad into an empty database: verses per second."""
    report = load(endpoint, "iliad")
    return {
        "verses": report.inserted,
        "tokens": report.tokens,
        "seconds": round(report.seconds, 3),
        "verses_per_s": round(report.inserted / report.seconds, 1),
    }


def index_build_figures(endpoint: Endpoint) -> dict[str, Any]:
    """Seconds to drop and build again every search index (HNSW, GIN trigram, token fold)."""
    notes: list[str] = []
    with owner_engine(endpoint) as engine, engine.begin() as conn:
        rows = conn.execute(text("SELECT count(*) FROM text_segment")).scalar_one()
        began = time.perf_counter()
        with search_indexes_paused(conn, True, notes.append):
            pass
        seconds = time.perf_counter() - began
    return {"rows": rows, "seconds": round(seconds, 3), "detail": "; ".join(notes)}
