"""Section 4: text and vector latency with 1x, 4x and 16x the Iliad, to show how cost grows.

The copies are made inside the database (INSERT ... SELECT under a new work id and URN, their
verses and their words), with the search indexes rebuilt once per scale rather than fed row by
row. They are exact copies: every query matches `factor` times as many verses.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from sqlalchemy import Connection, text

from app.ingest import search_indexes_paused, vacuum_after_load
from ops.bench.data import owner_engine
from ops.bench.load import QUERIES, drive, http_call
from ops.bench.stats import ratio
from ops.endpoint import Endpoint

COPY_SLUG = "bench-copy-{n}"


def scale_figures(
    owner: Endpoint, api_url: str, factors: tuple[int, ...], requests: int, deadline_s: float
) -> dict[str, Any]:
    """For each factor: copy up to it, then text and vector latency at concurrency 1 (API)."""
    runs = []
    for factor in factors:
        run = scale_to(owner, factor)
        for mode in ("text", "vector"):
            opener = partial(http_call, api_url, mode)
            drive(opener, 1, len(QUERIES), deadline_s)  # warm-up: the rebuilt indexes into the cache
            run[mode] = drive(opener, 1, requests, deadline_s)
        runs.append(run)
    first, last = runs[0], runs[-1]
    return {
        "factors": list(factors),
        "runs": runs,
        "growth_p50": {
            mode: ratio(last[mode]["p50_ms"], first[mode]["p50_ms"]) for mode in ("text", "vector")
        },
        "growth_p99": {
            mode: ratio(last[mode]["p99_ms"], first[mode]["p99_ms"]) for mode in ("text", "vector")
        },
        "note": "" if 16 in factors else f"--quick: {', '.join(f'{f}x' for f in factors)} only",
    }


def scale_to(owner: Endpoint, factor: int) -> dict[str, Any]:
    """Add copies of the Iliad (work ids of their own) until there are `factor` in all."""
    with owner_engine(owner) as engine:
        with engine.begin() as conn:
            iliad = conn.execute(text("SELECT id FROM work WHERE slug = 'iliad'")).scalar_one()
            like = {"like": COPY_SLUG.format(n="%")}
            copies = conn.execute(text("SELECT count(*) FROM work WHERE slug LIKE :like"), like)
            have = 1 + copies.scalar_one()
            began = time.perf_counter()
            with search_indexes_paused(conn, factor > have, lambda _line: None):
                for n in range(have, factor):
                    _copy(conn, iliad, n)
            rows = conn.execute(text("SELECT count(*) FROM text_segment")).scalar_one()
        vacuum_after_load(engine)  # as ingest does: the figures are of the data, not of a load just done
    return {"factor": factor, "rows": rows, "load_seconds": round(time.perf_counter() - began, 2)}


def _copy(conn: Connection, iliad: int, n: int) -> None:
    slug = COPY_SLUG.format(n=n)
    work_id = conn.execute(
        text(
            "INSERT INTO work (slug, urn, title, author, language_id)"
            " SELECT :slug, :urn, title || :suffix, author, language_id FROM work WHERE id = :iliad"
            " RETURNING id"
        ),
        {"slug": slug, "urn": f"urn:homer-ops:{slug}", "suffix": f" (copy {n})", "iliad": iliad},
    ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO text_segment (work_id, book, line, ref, urn, text, text_fold, emb, deleted)"
            " SELECT :work_id, book, line, ref, :urn || ref, text, text_fold, emb, deleted"
            " FROM text_segment WHERE work_id = :iliad ORDER BY book, line"
        ),
        {"work_id": work_id, "urn": f"urn:homer-ops:{slug}:", "iliad": iliad},
    )
    conn.execute(  # the copies' words too, or the word plans would find only the original's verses
        text(
            "INSERT INTO token (segment_id, position, surface, fold, size, work_id, book, line)"
            " SELECT c.id, t.position, t.surface, t.fold, t.size, c.work_id, t.book, t.line"
            " FROM token t JOIN text_segment o ON o.id = t.segment_id AND o.work_id = :iliad"
            " JOIN text_segment c ON (c.work_id, c.book, c.line) = (:work_id, o.book, o.line)"
        ),
        {"work_id": work_id, "iliad": iliad},
    )
