"""Indexes for the bounded one-word plan: verses in rank order, and token lookups by (fold, verse).

`ix_text_segment_size_order` walks verses in the text ranking's tie order (size, then the
edition's order); `ix_token_fold` gains `segment_id`, so that "does this verse hold this word"
is one index probe and "which verses hold it" an index-only scan; `ix_token_fold_prefix`
(text_pattern_ops, whatever the collation) answers "which words begin so" (`fold LIKE 'αχιλ%'`).

Revision ID: b3d5f7a9c1e2
Revises: 9775099a6534
Create Date: 2026-12-01
"""

from alembic import op

revision = "b3d5f7a9c1e2"
down_revision = "9775099a6534"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_text_segment_size_order"
        " ON text_segment ((length(text_fold)), work_id, book, line)"
    )
    op.execute("DROP INDEX IF EXISTS ix_token_fold")
    op.execute("CREATE INDEX ix_token_fold ON token (fold, segment_id)")
    op.execute("CREATE INDEX IF NOT EXISTS ix_token_fold_prefix ON token (fold text_pattern_ops)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_token_fold_prefix")
    op.execute("DROP INDEX IF EXISTS ix_token_fold")
    op.execute("CREATE INDEX ix_token_fold ON token (fold)")
    op.execute("DROP INDEX IF EXISTS ix_text_segment_size_order")
