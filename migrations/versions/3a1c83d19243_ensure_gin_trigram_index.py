"""Ensure GIN trigram index on text_segment.text_fold.

Revision ID: 3a1c83d19243
Revises: 3c0e8fb40e2c
Create Date: 2024-01-05
"""

from alembic import op

revision = "3a1c83d19243"
down_revision = "3c0e8fb40e2c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_text_segment_text_fold_trgm "
        "ON text_segment USING gin (text_fold gin_trgm_ops)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_text_segment_text_fold_trgm")
