"""Mark verses the edition prints as deleted (TEI <del>): text_segment.deleted.

Revision ID: 9775099a6534
Revises: 3a1c83d19243
Create Date: 2024-01-06
"""

import sqlalchemy as sa
from alembic import op

revision = "9775099a6534"
down_revision = "3a1c83d19243"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "text_segment",
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("text_segment", "deleted")
