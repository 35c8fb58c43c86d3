"""Each distinct folded verse text once (`text_form`), for the trigram scan of fuzzy queries.

The trigram scan scored every verse its index found, so its cost grew with the verses that repeat
a text: Homer's formulas, and a corpus that holds a work twice. It now scores each distinct text
once, in `text_form`, and takes the verses of the best texts through `ix_text_segment_text_fold`
until the page is full (app/text_plans.py). Statement-level triggers keep `text_form` a superset
of the texts in `text_segment`, whoever writes there; a text whose verses are gone stays behind,
harmless (it has no verses to return). Its column gets one statistics entry, as
`text_segment.text_fold` did (c4e6a8b0d2f3), so planning does not score the sample.

Revision ID: d5f7b9c1e3a4
Revises: c4e6a8b0d2f3
Create Date: 2026-12-01
"""

from alembic import op

revision = "d5f7b9c1e3a4"
down_revision = "c4e6a8b0d2f3"
branch_labels = None
depends_on = None

_ADD_FORMS = """
CREATE FUNCTION text_form_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO text_form (text_fold) SELECT DISTINCT text_fold FROM new_rows ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$"""


def upgrade() -> None:
    op.execute("CREATE TABLE text_form (text_fold text PRIMARY KEY)")
    op.execute("ALTER TABLE text_form ALTER COLUMN text_fold SET STATISTICS 1")
    op.execute("INSERT INTO text_form (text_fold) SELECT DISTINCT text_fold FROM text_segment")
    op.execute("CREATE INDEX ix_text_form_text_fold_trgm ON text_form USING gin (text_fold gin_trgm_ops)")
    op.execute("CREATE INDEX ix_text_segment_text_fold ON text_segment (text_fold)")
    op.execute(_ADD_FORMS)
    for event in ("INSERT", "UPDATE"):  # a trigger with a transition table names one event
        op.execute(
            f"CREATE TRIGGER text_segment_forms_{event.lower()} AFTER {event} ON text_segment"
            " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION text_form_add()"
        )
    op.execute("ANALYZE text_form")


def downgrade() -> None:
    for event in ("insert", "update"):
        op.execute(f"DROP TRIGGER text_segment_forms_{event} ON text_segment")
    op.execute("DROP FUNCTION text_form_add()")
    op.execute("DROP INDEX ix_text_segment_text_fold")
    op.execute("DROP TABLE text_form")
