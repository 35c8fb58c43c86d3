"""Each token carries its verse's place in the text ranking, so a word's verses come in rank order.

The text ranking's tie order is the verse's folded length, then the edition's order (work, book,
line); `ix_text_segment_size_order` walks verses so. A word's postings came in verse-id order,
so the word plans either collected every verse holding the word and sorted them, or walked the
verses in rank order checking each, whichever read less: about sqrt(page x verses) rows. With
the verse's `size`, `work_id`, `book` and `line` on each token, `ix_token_fold_rank` lists a
word's verses in rank order, and the plans stop at the page; `ix_token_fold_prefix` covers them
too, so a word beginning's postings are sorted into rank order without reading a verse. The
values are the verse's own and never change (ingest writes a verse once; `text_fold` is not
updated).

Revision ID: e6a8c0d2f4b5
Revises: d5f7b9c1e3a4
Create Date: 2026-12-01
"""

from alembic import op

revision = "e6a8c0d2f4b5"
down_revision = "d5f7b9c1e3a4"
branch_labels = None
depends_on = None

_RANK_COLUMNS = ("size", "work_id", "book", "line")


def upgrade() -> None:
    op.execute("ALTER TABLE token " + ", ".join(f"ADD COLUMN {name} integer" for name in _RANK_COLUMNS))
    op.execute(
        "UPDATE token t SET size = length(s.text_fold), work_id = s.work_id, book = s.book, line = s.line"
        " FROM text_segment s WHERE s.id = t.segment_id"
    )
    not_null = ", ".join(f"ALTER COLUMN {name} SET NOT NULL" for name in _RANK_COLUMNS)
    op.execute(f"ALTER TABLE token {not_null}")
    op.execute("DROP INDEX IF EXISTS ix_token_fold")
    op.execute("CREATE INDEX ix_token_fold_rank ON token (fold, size, work_id, book, line, segment_id)")
    op.execute("DROP INDEX IF EXISTS ix_token_fold_prefix")
    op.execute(
        "CREATE INDEX ix_token_fold_prefix ON token (fold text_pattern_ops)"
        " INCLUDE (size, work_id, book, line, segment_id)"
    )
    op.execute("ANALYZE token")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_token_fold_rank")
    op.execute("DROP INDEX IF EXISTS ix_token_fold_prefix")
    op.execute("CREATE INDEX ix_token_fold_prefix ON token (fold text_pattern_ops)")
    op.execute("CREATE INDEX ix_token_fold ON token (fold, segment_id)")
    op.execute("ALTER TABLE token " + ", ".join(f"DROP COLUMN {name}" for name in _RANK_COLUMNS))
