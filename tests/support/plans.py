"""The plans PostgreSQL runs for a search (EXPLAIN ANALYZE), for the tests of the indexes and word plans."""

from __future__ import annotations

from sqlalchemy import Connection

from app.embedding import default_embedder
from app.search import SearchQuery, explain


def plan_of(conn: Connection, query: SearchQuery) -> str:
    """The plan of `query`, the transaction (and its SET LOCAL thresholds) rolled back after."""
    try:
        return explain(conn, query, default_embedder())
    finally:
        conn.rollback()


def node_rows(lines: list[str], node: str) -> list[str]:
    """What EXPLAIN ANALYZE says of each `node` line: its rows, or 'never executed'."""
    return [
        "never executed" if "never executed" in line else line.split("rows=")[1].split()[0]
        for line in lines
        if node in line
    ]
