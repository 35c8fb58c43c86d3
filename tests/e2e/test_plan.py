"""`up --plan` names what changed and changes nothing; `up` then carries that plan out."""

from __future__ import annotations

import httpx
import pytest

from ops import children
from ops.migrate import head_revision
from tests.support.output import step_lines
from tests.support.project import Project, plan_of, read_state
from tests.support.sources import NEW_REVISION

pytestmark = pytest.mark.e2e

NEW_ROUTE = """

@app.get("/plan-probe", include_in_schema=False)
def plan_probe() -> dict[str, str]:
    return {"served": "the edited code"}
"""


def test_an_edit_under_app_is_planned_then_served(project):
    assert project.invoke("up").returncode == 0
    pid = read_state(project)["api"]["pid"]
    assert plan_of(project)["api"] == f"keep — pid {pid} healthy on {read_state(project)['api']['url']}"

    with open(project.root / "app" / "main.py", "a", encoding="utf-8") as source:
        source.write(NEW_ROUTE)
    planned = plan_of(project)
    assert planned["api"] == f"restart — app/main.py changed since pid {pid} started"
    assert planned["db"].startswith("keep") and planned["migrate"].startswith("keep")
    assert read_state(project)["api"]["pid"] == pid  # --plan changed nothing

    up = project.invoke("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"plan: api: restart — app/main.py changed since pid {pid} started" in up.stdout
    assert step_lines(up.stdout)["api-start"] == "OK" and step_lines(up.stdout)["db"] == "SKIP"
    url = read_state(project)["api"]["url"]
    assert httpx.get(f"{url}/plan-probe", trust_env=False).json() == {"served": "the edited code"}
    assert plan_of(project)["api"].startswith("keep")


def test_a_new_migration_is_planned_then_applied(project):
    assert project.invoke("up").returncode == 0
    current = head_revision(project.root)
    assert plan_of(project)["migrate"] == f"keep — at head {current}"
    versions = project.root / "migrations" / "versions"
    (versions / "ffff0000aaaa_plan_note.py").write_text(NEW_REVISION.format(head=current))
    planned = plan_of(project)
    assert planned["migrate"] == f"apply — {current} -> ffff0000aaaa"
    added = "migrations/versions/ffff0000aaaa_plan_note.py added"
    assert planned["api"].startswith(f"restart — {added} since pid")

    up = project.invoke("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert step_lines(up.stdout)["migrate"] == "OK"
    assert plan_of(project)["migrate"] == "keep — at head ffff0000aaaa"


def test_a_broken_stack_file_is_exit_2_naming_the_key(project):
    stack_file = project.root / "stack.toml"
    stack_file.write_text(stack_file.read_text().replace("workers = 1", "workers = 1\nthreads = 4"))
    for args in (("up",), ("up", "--plan"), ("status",)):
        result = project.invoke(*args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: ")
        assert "stack.toml: api.threads: unknown key" in result.stderr and "Traceback" not in result.stderr


def _imported(stderr: str, module: str) -> bool:
    """Whether PYTHONPROFILEIMPORTTIME's report (on stderr) lists `module` as imported."""
    return any(line.rsplit("|", 1)[-1].strip() == module for line in stderr.splitlines())


def test_with_the_api_healthy_at_head_the_plan_needs_no_database_driver(project):
    assert project.invoke("up").returncode == 0
    head = head_revision(project.root)
    profiled = Project(project.root, {**project.env, "PYTHONPROFILEIMPORTTIME": "1"})
    planned = profiled.invoke("up", "--plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert f"migrate: keep — at head {head}" in planned.stdout.splitlines()
    assert not _imported(planned.stderr, "psycopg")  # /health said so: no driver, no connection

    children.stop(read_state(project)["api"]["pid"])  # no API: the plan asks the database itself
    asked = profiled.invoke("up", "--plan")
    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert f"migrate: keep — at head {head}" in asked.stdout.splitlines()
    assert _imported(asked.stderr, "psycopg")


def test_a_new_cluster_is_unpacked_while_up_imports_and_nothing_is_left_beside_it(project):
    """ops.head_start: the second cold `up` (the first one made sure the template exists) finds its
    cluster unpacked ahead, and no staging directory outlives it."""
    assert project.invoke("up").returncode == 0
    assert project.invoke("down", "--volumes").returncode == 0
    up = project.invoke("up")
    assert up.returncode == 0, up.stdout + up.stderr
    db = next(step for step in read_state(project)["steps"] if step["name"] == "db")
    assert "copied the initdb template (unpacked ahead;" in db["detail"], db
    assert [path.name for path in project.state_file.parent.glob(".pgdata.head-start-*")] == []
