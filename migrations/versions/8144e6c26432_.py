""""""

# Revision ID: 8144e6c26432 (the old project's first revision, with an empty message).
# Extensions: pgvector (`vector`) and `pg_trgm`. On servers where the app's role may not
# create `vector` (it is not a trusted extension), the harness creates both as superuser
# beforehand and this revision finds them present.

from alembic import op

revision = "8144e6c26432"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")


def downgrade() -> None:
    # Drop only what this role owns: a superuser-created extension stays for the next upgrade.
    op.execute(
        """
        DO $$
        DECLARE ext text;
        BEGIN
          FOREACH ext IN ARRAY ARRAY['pg_trgm', 'vector'] LOOP
            IF EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = ext
                       AND pg_has_role(current_user, e.extowner, 'USAGE')) THEN
              EXECUTE format('DROP EXTENSION %I', ext);
            END IF;
          END LOOP;
        END $$;
        """
    )
