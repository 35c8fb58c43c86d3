"""The stack's container killed while `up` waits, killed during its first initdb, or removed."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from tests.support.db import sql
from tests.support.invoke import spawn
from tests.support.output import one_line_error, report, step_lines
from tests.support.procs import wait_for
from tests.support.project import read_state
from tests.support.stacks import docker_names

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture
def docker_project(project):
    """The project copy as a docker stack with a unique name and the local offline image."""
    from ops.docker_engine import try_connect
    from ops.image import ensure_offline_image

    client, reason = try_connect(timeout=10)
    if client is None:
        pytest.skip(f"NO DOCKER ENGINE ANSWERS ({reason})")
    tag, _built = ensure_offline_image(client)  # built here if missing or of an older recipe
    project.env.update(OPS_BACKEND="docker", OPS_STACK=f"f{secrets.token_hex(4)}", OPS_DOCKER_IMAGE=tag)
    project.client = client
    try:
        yield project
    finally:
        project.invoke("down", "--volumes", timeout=120)
        client.close()


def test_docker_kill_during_db_ready_fails_up_fast_with_4_and_the_exit_code(docker_project):
    """The container dies while waited on: exit 4 at once, its exit code (137) in the message."""
    project = docker_project
    name = docker_names(project.env["OPS_STACK"], project.root)[0]
    running = spawn(project, "up")
    wait_for(lambda: "::STEP::db::" in running.stdout or running.process.poll() is not None, timeout=120)
    if "::STEP::db-ready::OK" in running.stdout:
        pytest.skip("PostgreSQL was ready before the kill could land (race lost)")
    container = project.client.containers.get(name)
    container.kill()
    killed_at = time.monotonic()
    code = running.wait(timeout=120)
    container.reload()
    exit_code = container.attrs["State"]["ExitCode"]
    report("docker kill during db-ready", time.monotonic() - killed_at, exit=code, container_exit=exit_code)

    if step_lines(running.stdout).get("db-ready") == "OK":
        pytest.skip("PostgreSQL was ready before the kill landed (race lost)")
    assert code == 4, running.stderr
    assert step_lines(running.stdout)["db-ready"] == "FAIL"
    assert one_line_error(running.stderr), running.stderr
    last = running.stderr.strip().splitlines()[-1]
    assert name in last and f"exit code {exit_code}" in last, last
    failed = next(step for step in read_state(project)["steps"] if step["status"] == "FAIL")
    assert failed["name"] == "db-ready"


def test_up_heals_after_container_killed_during_its_first_initdb(docker_project):
    """Kill the container while initdb runs in it (seen on the volume); the next `up` must heal.

    The entrypoint builds the cluster beside PGDATA (`docker.initdb`) and renames it into place
    when complete; the next start discards the unfinished copy and initialises again.
    """
    project = docker_project
    stack = project.env["OPS_STACK"]
    running = spawn(project, "up")
    volume = wait_for(lambda: _volume(project, docker_names(stack, project.root)[1]), timeout=120)
    pgdata = Path(volume.attrs["Mountpoint"]) / "18" / "docker"
    staging = pgdata.with_name("docker.initdb")
    wait_for(lambda: (staging / "PG_VERSION").exists() or running.process.poll() is not None, timeout=120)
    project.client.containers.get(docker_names(stack, project.root)[0]).kill()
    if (pgdata / "PG_VERSION").exists():
        running.wait(timeout=120)
        pytest.skip("initdb had finished before the kill landed (window missed)")
    assert running.wait(timeout=120) == 4, running.stderr
    assert not (pgdata / "PG_VERSION").exists(), "a half-made cluster was left in PGDATA"

    started = time.monotonic()
    healed = project.invoke("up", timeout=180)
    report("up after a kill during initdb", time.monotonic() - started, exit=healed.returncode)
    assert healed.returncode == 0, healed.stderr
    assert (pgdata / "global" / "pg_control").exists() and not staging.exists()


def _volume(project, name):
    from docker.errors import NotFound

    try:
        return project.client.volumes.get(name)
    except NotFound:
        return None


def test_state_naming_a_removed_container_gets_a_new_one_on_the_same_volume(docker_project):
    """`docker rm -f` behind the harness's back: `up` starts a new container; the data is kept."""
    project = docker_project
    assert project.invoke("up", timeout=180).returncode == 0
    sql(project, "CREATE TABLE keepsake (n int)")
    sql(project, "INSERT INTO keepsake VALUES (3)")
    removed = read_state(project)["db"]["container_id"]
    project.client.containers.get(removed).remove(force=True)

    started = time.monotonic()
    healed = project.invoke("up", timeout=180)
    report("state names a removed container", time.monotonic() - started, exit=healed.returncode)
    assert healed.returncode == 0, healed.stderr
    assert step_lines(healed.stdout)["db"] == "OK"
    assert read_state(project)["db"]["container_id"] != removed
    assert sql(project, "SELECT n FROM keepsake") == [(3,)]
    assert project.invoke("status").returncode == 0
