"""A lost state file or a `git clean -fdx` under a running stack leaves no orphan behind, and a
taken API port either moves (the default) or is named with its holder (a port the user set)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator

import pytest

from ops.procs import pid_alive
from ops.scope import marked_processes
from tests.support.output import one_line_error, step_lines
from tests.support.project import Project, read_state

pytestmark = pytest.mark.e2e


def ours(project: Project) -> Counter[str]:
    """How many marked top-level processes of each component this project's stack has (via psutil)."""
    state_dir = str(project.root / ".ops")
    return Counter(mark.component for mark in marked_processes() if mark.state_dir == state_dir)


def up_healthy(project: Project) -> subprocess.CompletedProcess[str]:
    result = project.invoke("up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.invoke("status").returncode == 0
    return result


def test_a_deleted_state_file_under_a_running_stack(project):
    up_healthy(project)
    before = read_state(project)
    project.state_file.unlink()

    again = up_healthy(project)
    assert f"swept: stopped orphaned api pid {before['api']['pid']}" in again.stdout
    assert step_lines(again.stdout)["db"] == "SKIP"  # the postmaster was not orphaned: it is reused
    assert not pid_alive(before["api"]["pid"])
    assert read_state(project)["db"]["pid"] == before["db"]["pid"]
    assert ours(project) == {"api": 1, "db": 1}


def test_git_clean_under_a_running_stack(project):
    git = shutil.which("git")
    if git is None:
        pytest.skip("NO GIT: `git clean -fdx` cannot be run")
    for argv in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run([git, *argv], cwd=project.root, check=True, capture_output=True)
    up_healthy(project)
    before = read_state(project)
    subprocess.run([git, "clean", "-fdxq"], cwd=project.root, check=True)
    assert not project.state_file.exists() and pid_alive(before["db"]["pid"])  # running on nothing

    again = up_healthy(project)
    assert f"swept: stopped orphaned db pid {before['db']['pid']}" in again.stdout
    assert f"swept: stopped orphaned api pid {before['api']['pid']}" in again.stdout
    assert not pid_alive(before["db"]["pid"]) and not pid_alive(before["api"]["pid"])
    assert ours(project) == {"api": 1, "db": 1}


@pytest.fixture
def port_8000_taken() -> Iterator[None]:
    """Port 8000 held by a program that is not the harness (this test), if it is free."""
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            squatter.bind(("127.0.0.1", 8000))
        except OSError:
            pass  # already held by someone else: just as taken
        else:
            squatter.listen()
        yield


def test_the_default_api_port_moves_when_taken_and_the_new_one_is_recorded(project, port_8000_taken):
    del project.env["OPS_API_PORT"]  # a plain `invoke up`, no port set anywhere
    up = up_healthy(project)
    match = re.search(r"^API\s+http://127\.0\.0\.1:(\d+)", up.stdout, re.M)
    assert match and int(match[1]) != 8000
    assert f"api: port 8000 is taken; using {match[1]}" in up.stdout
    assert read_state(project)["api"]["port"] == int(match[1])
    assert step_lines(project.invoke("up").stdout)["api-start"] == "SKIP"  # found where it was moved to


def test_an_api_port_set_explicitly_and_taken_is_exit_7_naming_its_holder(project, port_8000_taken):
    taken = project.invoke("up", "--api-port", "8000")
    assert taken.returncode == 7 and one_line_error(taken.stderr)
    assert re.search(r"in use by pid \d+ \(.*\)", taken.stderr)
    up_healthy(project)  # the project's own port (OPS_API_PORT)

    other = project.invoke(
        "up", "--stack", "other", "--state-dir", ".ops/other", "--api-port", project.env["OPS_API_PORT"]
    )
    try:
        assert other.returncode == 7 and one_line_error(other.stderr)
        pid = read_state(project)["api"]["pid"]
        assert f"in use by pid {pid}" in other.stderr and "this harness's api" in other.stderr
        assert "stack homer" in other.stderr
    finally:
        project.invoke("down", "--stack", "other", "--state-dir", ".ops/other")
