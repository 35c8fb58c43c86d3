"""Drop redundant unique index on language.code (keep named constraint).

Revision ID: a1f23b4c5d6e
Revises: 94f9767a55ea
Create Date: 2024-01-03
"""

from alembic import op

revision = "a1f23b4c5d6e"
down_revision = "94f9767a55ea"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_language_code")


def downgrade() -> None:
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS ix_language_code ON language (code)")
