"""`up`, `down` and `status` in-process against a real embedded PostgreSQL and a real uvicorn."""

from __future__ import annotations

import contextlib
import os
import signal
import socket

import httpx
import pytest

from ops import stack
from ops.errors import PortInUse
from ops.state import load_state
from tests.support.db import query
from tests.support.output import in_branch_order
from tests.support.stacks import stack_settings


@pytest.fixture
def settings(tmp_path):
    settings = stack_settings(tmp_path)
    yield settings
    stack.down(settings, emit=lambda _line: None)


def quiet(_line: str) -> None:
    pass


@contextlib.contextmanager
def listening_on(port: int):
    """A listener on 127.0.0.1:port (SO_REUSEADDR: the port may still have TIME_WAIT connections)."""
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        yield


def health(settings) -> httpx.Response:
    return httpx.get(f"{settings.api_url}/health", timeout=5, trust_env=False)


def test_up_down_up_keeps_data_and_port(settings):
    first = stack.up(settings, emit=quiet)
    url = first.endpoint.url()
    query(url, "CREATE TABLE keepsake (note text)")
    query(url, "INSERT INTO keepsake VALUES ('μῆνιν ἄειδε')")
    stack.down(settings, emit=quiet)
    assert not all(c.healthy for c in stack.status(settings))

    second = stack.up(settings, emit=quiet)
    assert second.endpoint.port == first.endpoint.port  # kept while it stays free
    assert query(second.endpoint.url(), "SELECT note FROM keepsake") == [("μῆνιν ἄειδε",)]
    assert all(c.healthy for c in stack.status(settings))


def test_up_twice_changes_nothing(settings):
    stack.up(settings, emit=quiet)
    pid_before = load_state(settings.state_file).api.pid
    lines: list[str] = []
    stack.up(settings, emit=lines.append)
    step_lines = [line for line in lines if line.startswith("::STEP::")]
    assert sorted(step_lines) == [
        "::STEP::api-health::OK",
        "::STEP::api-start::SKIP",
        "::STEP::db-ready::OK",
        "::STEP::db::SKIP",
        "::STEP::migrate::SKIP",
    ]
    assert in_branch_order([line.split("::")[2] for line in step_lines])
    assert load_state(settings.state_file).api.pid == pid_before


def test_health_is_503_with_the_reason_when_the_database_stops(settings):
    stack.up(settings, emit=quiet)
    assert health(settings).status_code == 200
    state = load_state(settings.state_file)
    os.kill(state.db.pid, signal.SIGKILL)
    response = health(settings)
    assert response.status_code == 503
    assert "database unreachable" in response.json()["reason"]

    lines: list[str] = []
    stack.up(settings, emit=lines.append)  # heals: restarts only the database
    assert "::STEP::db::OK" in lines and "::STEP::api-start::SKIP" in lines
    assert health(settings).status_code == 200


def test_health_is_503_when_migrations_are_pending(settings):
    stack.up(settings, emit=quiet)
    stack.migrate_stack(settings, "-1", emit=quiet)
    response = health(settings)
    assert response.status_code == 503
    assert response.json()["reason"].startswith("migrations pending")
    assert [c.healthy for c in stack.status(settings)] == [False, False]


def test_recorded_port_taken_by_another_process_moves_to_a_free_one(settings):
    first = stack.up(settings, emit=quiet)
    stack.down(settings, emit=quiet)
    with listening_on(first.endpoint.port):  # another process takes the port between runs
        second = stack.up(settings, emit=quiet)
    assert second.endpoint.port != first.endpoint.port
    assert health(settings).status_code == 200


def test_api_port_in_use_is_a_clear_error(settings):
    with (
        listening_on(settings.api_port),
        pytest.raises(PortInUse, match=f"{settings.api_port} for the API is in use"),
    ):
        stack.up(settings, emit=quiet)
    assert load_state(settings.state_file).steps[-1].status == "FAIL"
