"""How often words occur in the ingested text: the folds of the `token` table (one per word)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, text


def word_counts(conn: Connection, folds: Collection[str]) -> dict[str, int]:
    """Occurrences of each of `folds` in the text (through the index on token.fold); absent ones left out."""
    if not folds:
        return {}
    rows = conn.execute(
        text("SELECT fold, count(*) AS n FROM token WHERE fold = ANY(:folds) GROUP BY fold"),
        {"folds": sorted(folds)},
    )
    return {fold: n for fold, n in rows}
