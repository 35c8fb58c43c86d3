"""Faults that strike while the API's branch and the database's branch both run (`up` starts
uvicorn beside initdb and the migrations): both branches end, nothing is left running."""

from __future__ import annotations

import signal
import time

import pytest

from ops.migrate import head_revision
from tests.support.invoke import spawn
from tests.support.output import one_line_error, report, step_lines
from tests.support.procs import uvicorn_pids, wait_for
from tests.support.project import read_state

pytestmark = pytest.mark.e2e

SLOW_REVISION = '''"""a migration that takes a while (a test's)"""

from alembic import op

revision = "eeee0000slow"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT pg_sleep({seconds})")


def downgrade() -> None:
    pass
'''


def slow_migration(project, seconds: float) -> None:
    versions = project.root / "migrations" / "versions"
    head = head_revision(project.root)
    (versions / "eeee0000slow_sleep.py").write_text(SLOW_REVISION.format(head=head, seconds=seconds))


def test_uvicorn_failing_to_import_while_migrations_run_ends_both_branches(project):
    slow_migration(project, 3)
    (project.root / "app" / "main.py").write_text('raise RuntimeError("boom while migrating")\n')
    began = time.monotonic()
    result = project.invoke("up", timeout=120)
    report("app fails to import during a slow migration", time.monotonic() - began, exit=result.returncode)

    assert result.returncode == 6, result.stdout + result.stderr
    assert "boom while migrating" in result.stderr and one_line_error(result.stderr)
    steps = step_lines(result.stdout)
    assert steps["api-start"] == "OK" and steps["api-health"] == "FAIL"
    assert "seed" not in steps  # the database branch stopped after its step
    assert uvicorn_pids(project) == []
    assert read_state(project)["api"]["pid"] is None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_while_both_branches_run(project, sig):
    slow_migration(project, 5)
    running = spawn(project, "up")
    wait_for(
        lambda: "::STEP::api-start::OK" in running.stdout and "::STEP::db-ready::" in running.stdout,
        timeout=90,
    )
    time.sleep(0.5)  # inside the migration, uvicorn importing or waiting beside it
    interrupted_at = time.monotonic()
    running.signal_group(sig)
    code = running.wait(timeout=60)
    noticed = time.monotonic() - interrupted_at
    report(f"{sig.name} during a migration with the API started", noticed, exit=code)

    assert code in (130, -sig), running.stderr
    assert running.stderr.strip().splitlines()[-1] == "interrupted"
    assert uvicorn_pids(project) == [], "the API's branch left uvicorn running"
    state = read_state(project)
    assert state["api"]["pid"] is None
    statuses = {step["name"]: step["status"] for step in state["steps"]}
    assert statuses["migrate"] == "FAIL" and "RUNNING" not in statuses.values()
    again = project.invoke("up", timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
