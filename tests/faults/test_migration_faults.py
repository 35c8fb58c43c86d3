"""A migration that fails halfway, PostgreSQL killed during a migration, and before `invoke migrate`."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ops.migrate import head_revision
from tests.support.db import sql
from tests.support.invoke import spawn
from tests.support.output import one_line_error, report, step_lines
from tests.support.procs import postmaster_pid, wait_for
from tests.support.project import read_state

pytestmark = pytest.mark.e2e

BROKEN = '''"""A fault: creates a table, then runs invalid SQL."""

from alembic import op

revision = "fa17fa17fa17"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE fault_probe (id int)")
    op.execute("SELEKT this is not sql")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS fault_probe")
'''

SLOW = '''"""A fault: creates a table, then takes its time (long enough to be killed in)."""

from alembic import op

revision = "510451045104"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE slow_probe (id int)")
    op.execute("SELECT pg_sleep(30)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS slow_probe")
'''


def test_postgres_killed_during_a_migration_fails_in_one_line_and_leaves_the_old_schema(project):
    """kill -9 of the postmaster mid-migration: exit 4 or 5 at once, no half-applied DDL; `up` heals."""
    old_head = head_revision(project.root)
    assert project.invoke("up").returncode == 0
    sql(project, "CREATE TABLE keepsake (n int)")
    sql(project, "INSERT INTO keepsake VALUES (7)")
    revision = project.root / "migrations" / "versions" / "510451045104_slow.py"
    revision.write_text(SLOW.format(down=old_head))

    running = spawn(project, "up")
    sleeping = "SELECT 1 FROM pg_stat_activity WHERE starts_with(query, 'SELECT pg_sleep')"
    wait_for(lambda: sql(project, sleeping), timeout=60)
    pid = postmaster_pid(project)
    assert pid
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    code = running.wait(timeout=120)
    report("postgres killed during a migration", time.monotonic() - killed_at, exit=code)

    assert code in (4, 5), running.stderr
    assert one_line_error(running.stderr), running.stderr
    assert step_lines(running.stdout)["migrate"] == "FAIL"

    revision.unlink()
    healed = project.invoke("up")
    assert healed.returncode == 0, healed.stderr
    assert sql(project, "SELECT to_regclass('slow_probe')") == [(None,)]
    assert sql(project, "SELECT version_num FROM alembic_version") == [(old_head,)]
    assert sql(project, "SELECT n FROM keepsake") == [(7,)]


def test_migration_failing_halfway_exits_5_and_rolls_back_its_ddl(project):
    """Exit 5, `migrate` FAIL with the SQL error, no new table, alembic_version still the old head."""
    old_head = head_revision(project.root)
    assert project.invoke("up").returncode == 0
    revision = project.root / "migrations" / "versions" / "fa17fa17fa17_broken.py"
    revision.write_text(BROKEN.format(down=old_head))

    started = time.monotonic()
    result = project.invoke("up")
    report("migration fails halfway", time.monotonic() - started, exit=result.returncode)

    assert result.returncode == 5, result.stderr
    assert one_line_error(result.stderr), result.stderr
    assert 'syntax error at or near "SELEKT"' in result.stderr
    assert step_lines(result.stdout)["migrate"] == "FAIL"
    migrate_step = next(step for step in read_state(project)["steps"] if step["name"] == "migrate")
    assert migrate_step["status"] == "FAIL" and "SELEKT" in migrate_step["detail"]
    assert sql(project, "SELECT to_regclass('fault_probe')") == [(None,)]
    assert sql(project, "SELECT version_num FROM alembic_version") == [(old_head,)]

    revision.unlink()
    healed = project.invoke("up")
    assert healed.returncode == 0, healed.stderr
    assert project.invoke("status").returncode == 0


def test_migrate_with_postgres_killed_fails_in_one_line_then_up_heals_with_data(project):
    """kill -9 of the postmaster, then `invoke migrate`: exit 4 at once (the server is seen dead,
    not waited for), one line; `up` heals, data kept."""
    assert project.invoke("up").returncode == 0
    sql(project, "CREATE TABLE keepsake (n int)")
    sql(project, "INSERT INTO keepsake VALUES (42)")
    pid = postmaster_pid(project)
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=10)

    killed_at = time.monotonic()
    result = project.invoke("migrate", timeout=120)
    report("postgres killed, then migrate", time.monotonic() - killed_at, exit=result.returncode)
    print(result.stderr.strip())

    assert result.returncode == 4, result.stderr
    assert one_line_error(result.stderr), result.stderr
    assert "PostgreSQL is not running" in result.stderr.strip().splitlines()[-1]
    migrate_step = next(step for step in read_state(project)["steps"] if step["name"] == "migrate")
    assert migrate_step["status"] == "FAIL" and migrate_step["attempts"] == 1, migrate_step

    healed = project.invoke("up")
    assert healed.returncode == 0, healed.stderr
    assert step_lines(healed.stdout)["db"] == "OK"
    assert sql(project, "SELECT n FROM keepsake") == [(42,)]
    assert project.invoke("status").returncode == 0
