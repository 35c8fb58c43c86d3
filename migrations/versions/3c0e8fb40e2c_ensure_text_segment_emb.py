"""Ensure text_segment.emb column and vector index exist.

Revision ID: 3c0e8fb40e2c
Revises: a1f23b4c5d6e
Create Date: 2024-01-04
"""

from alembic import op

revision = "3c0e8fb40e2c"
down_revision = "a1f23b4c5d6e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE text_segment ADD COLUMN IF NOT EXISTS emb vector(256)")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_text_segment_emb_hnsw "
        "ON text_segment USING hnsw (emb vector_cosine_ops)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_text_segment_emb_hnsw")
