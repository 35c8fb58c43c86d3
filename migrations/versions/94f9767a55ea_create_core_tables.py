"""create core tables

Revision ID: 94f9767a55ea
Revises: 8144e6c26432
Create Date: 2024-01-02
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision = "94f9767a55ea"
down_revision = "8144e6c26432"
branch_labels = None
depends_on = None

EMBEDDING_DIM = 256


def upgrade() -> None:
    op.create_table(
        "language",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.UniqueConstraint("code", name="uq_language_code"),
    )
    # The old project also had this redundant index; a1f23b4c5d6e drops it.
    op.create_index("ix_language_code", "language", ["code"], unique=True)
    op.create_table(
        "work",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(32), nullable=False, unique=True),
        sa.Column("urn", sa.Text, nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("language_id", sa.Integer, sa.ForeignKey("language.id"), nullable=False),
    )
    op.create_table(
        "text_segment",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("work_id", sa.Integer, sa.ForeignKey("work.id", ondelete="CASCADE"), nullable=False),
        sa.Column("book", sa.Integer, nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("urn", sa.Text, nullable=False, unique=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("text_fold", sa.Text, nullable=False),
        sa.Column("emb", Vector(EMBEDDING_DIM)),
        sa.UniqueConstraint("work_id", "book", "line", name="uq_text_segment_work_book_line"),
    )
    op.create_table(
        "token",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "segment_id", sa.BigInteger, sa.ForeignKey("text_segment.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("surface", sa.Text, nullable=False),
        sa.Column("fold", sa.Text, nullable=False),
        sa.UniqueConstraint("segment_id", "position", name="uq_token_segment_position"),
    )
    op.create_index("ix_token_fold", "token", ["fold"])


def downgrade() -> None:
    op.drop_table("token")
    op.drop_table("text_segment")
    op.drop_table("work")
    op.drop_table("language")
