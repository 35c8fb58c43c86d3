"""Stacks are scoped to their checkout on the real engine, and `auto` picks only what can deliver."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops import labels
from tests.support.db import query
from tests.support.output import one_line_error, step_lines
from tests.support.project import Project, close_project, copy_project, read_state
from tests.support.stacks import docker_names

pytestmark = [pytest.mark.docker, pytest.mark.e2e]


@pytest.fixture
def checkouts(engine, offline_image, tmp_path: Path) -> Iterator[tuple[Project, Project]]:
    """Two checkouts of the project (as `git worktree` gives), docker backend, no port or stack set."""
    made = []
    for name in ("a", "b"):
        copy = copy_project(tmp_path / name / "homer-ops")
        del copy.env["OPS_API_PORT"]
        copy.env.update(OPS_BACKEND="docker", OPS_SEED="true")
        made.append(copy)
    yield made[0], made[1]
    for copy in made:
        close_project(copy, "--volumes")


def containers_of(engine, project: Project) -> list:
    return engine.containers.list(all=True, filters=labels.selector(labels.PROJECT, project.root))


def verses(project: Project) -> int:
    db = read_state(project)["db"]
    url = f"postgresql://{db['user']}:{db['password']}@{db['host']}:{db['port']}/{db['database']}"
    return int(query(url, "SELECT count(*) FROM text_segment")[0][0])


def test_two_checkouts_side_by_side_never_touch_each_other(engine, checkouts):
    a, b = checkouts
    for copy in (a, b):
        up = copy.invoke("up", timeout=240)
        assert up.returncode == 0, up.stdout + up.stderr
        assert step_lines(up.stdout)["migrate"] == "OK"  # each migrates its own database
    state_a, state_b = read_state(a), read_state(b)
    assert state_a["db"]["container_name"] == docker_names("homer", a.root)[0]
    assert (
        state_b["db"]["container_name"] == docker_names("homer", b.root)[0] != state_a["db"]["container_name"]
    )
    assert state_a["api"]["url"] != state_b["api"]["url"]  # the default port moved for one of them
    assert [len(containers_of(engine, copy)) for copy in (a, b)] == [1, 1]
    assert verses(a) == verses(b) == 611

    gone = b.invoke("down", "--volumes")
    assert gone.returncode == 0, gone.stderr
    assert a.invoke("status").returncode == 0
    assert verses(a) == 611
    assert containers_of(engine, b) == [] and containers_of(engine, a)[0].status == "running"
    assert f"checkout {b.root}" not in gone.stdout  # `down` names nothing of another checkout


def test_a_state_file_naming_another_checkouts_container_does_not_adopt_it(engine, checkouts):
    """Two checkouts that shared one container before names were scoped: its owner keeps it."""
    a, b = checkouts
    assert a.invoke("up", timeout=240).returncode == 0
    (b.root / ".ops").mkdir()
    shutil.copy(a.state_file, b.state_file)
    up = b.invoke("up", timeout=240)
    assert up.returncode == 0, up.stdout + up.stderr
    assert read_state(b)["db"]["container_name"] == docker_names("homer", b.root)[0]
    assert [len(containers_of(engine, copy)) for copy in (a, b)] == [1, 1]
    assert a.invoke("status").returncode == 0


def test_down_all_lists_the_checkout_of_everything(engine, checkouts):
    """`--dry-run` only: a real `down --all` here would stop every stack on this machine, the
    developer's own among them, so the suite lists and does not remove."""
    a, b = checkouts
    for copy in (a, b):
        assert copy.invoke("up", timeout=240).returncode == 0
    every = a.invoke("down", "--all", "--dry-run")
    assert every.returncode == 0, every.stderr
    for copy in (a, b):
        container, volume = docker_names("homer", copy.root)
        assert f"would remove container {container} (stack homer, checkout {copy.root})" in every.stdout
        assert f"would remove volume {volume} (stack homer, checkout {copy.root})" in every.stdout
        pid = read_state(copy)["api"]["pid"]
        assert f"would stop api pid {pid} (stack homer, checkout {copy.root})" in every.stdout
        assert containers_of(engine, copy)[0].status == "running"
        assert copy.invoke("status").returncode == 0
    assert a.invoke("down", "--dry-run").returncode == 2


def test_auto_falls_back_to_embedded_when_no_image_can_be_had(engine, project):
    project.env.update(
        OPS_BACKEND="auto", OPS_DOCKER_IMAGE="homer-ops-test/absent:0", OPS_DOCKER_OFFLINE_FALLBACK="false"
    )
    up = project.invoke("up", timeout=240)
    assert up.returncode == 0, up.stdout + up.stderr
    chosen = next(line for line in up.stdout.splitlines() if line.startswith("backend: "))
    assert chosen.startswith("backend: embedded (auto: a Docker engine answers")
    assert "homer-ops-test/absent:0 cannot be pulled" in chosen and "using embedded" in chosen
    assert read_state(project)["db"]["backend"] == "embedded"
    assert json.loads(project.invoke("diagnose", "--json").stdout)["healthy"]


def test_docker_without_an_image_is_exit_3_in_one_line(engine, project):
    project.env.update(
        OPS_BACKEND="docker", OPS_DOCKER_IMAGE="homer-ops-test/absent:0", OPS_DOCKER_OFFLINE_FALLBACK="false"
    )
    up = project.invoke("up", timeout=240)
    assert up.returncode == 3 and one_line_error(up.stderr)
    assert "no PostgreSQL image can be had" in up.stderr
