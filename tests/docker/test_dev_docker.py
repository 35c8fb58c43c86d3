"""`invoke dev` on the docker backend: a container that dies is noticed and started again."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest

from tests.support.dev import served, start_dev, wait_for
from tests.support.project import Project, close_project, copy_project, read_state

pytestmark = [pytest.mark.docker, pytest.mark.e2e]


@pytest.fixture
def docker_project(engine, offline_image, tmp_path: Path) -> Iterator[Project]:
    copy = copy_project(tmp_path / "project")
    copy.env.update(OPS_BACKEND="docker")
    yield copy
    close_project(copy, "--volumes")


def status_of(engine, name: str) -> str | None:
    """The container's status; None while there is none of that name (the harness replaces it)."""
    try:
        return engine.containers.get(name).status
    except docker.errors.NotFound:
        return None


def test_dev_starts_a_killed_container_again_and_the_api_follows_its_new_port(engine, docker_project):
    process, output = start_dev(docker_project)
    wait_for("the API to answer", lambda: served(docker_project, "/health"), timeout=120)
    name = read_state(docker_project)["db"]["container_name"]
    engine.containers.get(name).kill()
    wait_for("the container to run again", lambda: status_of(engine, name) == "running", timeout=60)
    assert wait_for("the API to be healthy again", lambda: served(docker_project, "/health"), timeout=60)
    assert "db is not running" in output.read_text()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert process.returncode == 0, output.read_text()
