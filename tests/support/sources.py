"""Code the e2e tests write into a project copy: a declared worker, its stack.toml entry, a migration."""

from __future__ import annotations

WORKER = """\
import os, sys, time
import psycopg

with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5) as conn:
    database = conn.execute("SELECT current_database()").fetchone()[0]
print(f"connected to {database} ({VERSION})", flush=True)
print("ready", flush=True)
while True:
    time.sleep(1)
"""

DECLARED = """
[worker]
kind = "process"
command = ["python", "worker.py"]
env = { DATABASE_URL = "{db.url}" }
ready = { log = "^ready$", timeout = 20 }
after = ["migrate"]
restart = "on-failure"
"""

NEW_REVISION = '''"""add a note table (a test's migration)"""

import sqlalchemy as sa
from alembic import op

revision = "ffff0000aaaa"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("plan_note", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("plan_note")
'''
