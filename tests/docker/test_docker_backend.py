"""The docker backend against a real engine: ports read from the engine, data kept, leftovers healed."""

from __future__ import annotations

import contextlib
import socket

import httpx
import pytest

from ops import labels, stack
from ops.errors import BackendUnavailable
from ops.state import DbRecord, StackState, load_state
from tests.support.db import query
from tests.support.stacks import docker_names

pytestmark = pytest.mark.docker


def quiet(_line: str) -> None:
    pass


def container_of(engine, settings):
    return engine.containers.get(docker_names(settings.stack)[0])


def healthy(settings) -> bool:
    response = httpx.get(f"{settings.api_url}/health", timeout=5, trust_env=False)
    return response.status_code == 200


@contextlib.contextmanager
def hold_port(port: int):
    """Occupy 127.0.0.1:port (if we can) so that nothing can silently use it."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError:
        pass
    try:
        yield
    finally:
        sock.close()


def test_the_port_the_engine_mapped_is_used_by_migrations_api_and_status(engine, make_stack):
    settings = make_stack()
    with hold_port(5432):  # the old script's guess can never be right here
        result = stack.up(settings, emit=quiet)
        container = container_of(engine, settings)
        bindings = container.attrs["NetworkSettings"]["Ports"]["5432/tcp"]
        assert [(b["HostIp"], int(b["HostPort"])) for b in bindings] == [("127.0.0.1", result.endpoint.port)]
        assert result.endpoint.port != 5432
        assert load_state(settings.state_file).db.port == result.endpoint.port
        assert healthy(settings)  # the API reached the database on the mapped port
        db_line = stack.status(settings)[0]
        assert db_line.healthy and f"127.0.0.1:{result.endpoint.port}" in db_line.line
    found = container.labels
    assert found[labels.STACK] == settings.stack
    assert {labels.RUN_ID, labels.OWNER_PID, labels.CREATED, labels.IMAGE} <= set(found)
    # the new cluster is the image's pristine copy, not flushed at creation (as embedded's initdb)
    assert "POSTGRES_INITDB_ARGS=--no-sync" in container.attrs["Config"]["Env"]
    log = container.logs().decode()
    assert "from the image's pristine cluster" in log and "initialisation complete" in log


def test_up_down_up_keeps_the_data_in_the_volume(engine, make_stack):
    settings = make_stack()
    url = stack.up(settings, emit=quiet).endpoint.url()
    query(url, "CREATE TABLE keepsake (verse text)")
    query(url, "INSERT INTO keepsake VALUES ('ἄνδρα μοι ἔννεπε')")
    stack.down(settings, emit=quiet)
    assert container_of(engine, settings).status == "exited"
    assert engine.volumes.get(docker_names(settings.stack)[1])

    again = stack.up(settings, emit=quiet)
    assert query(again.endpoint.url(), "SELECT verse FROM keepsake") == [("ἄνδρα μοι ἔννεπε",)]
    assert healthy(settings)


def test_docker_kill_then_up_heals_with_data_intact(engine, make_stack):
    settings = make_stack()
    url = stack.up(settings, emit=quiet).endpoint.url()
    query(url, "CREATE TABLE keepsake (n int)")
    query(url, "INSERT INTO keepsake VALUES (7)")
    container_of(engine, settings).kill()

    lines: list[str] = []
    healed = stack.up(settings, emit=lines.append)
    assert "::STEP::db::OK" in lines
    assert query(healed.endpoint.url(), "SELECT n FROM keepsake") == [(7,)]
    assert healthy(settings)


def test_leftover_of_a_crashed_run_is_reused_even_without_its_state(engine, make_stack):
    settings = make_stack()
    stack.up(settings, emit=quiet)
    stack.down(settings, emit=quiet)  # the container stays, stopped, as after a crash
    settings.state_file.unlink()  # and the run's state is lost with it
    result = stack.up(settings, emit=quiet)
    assert healthy(settings)
    assert container_of(engine, settings).status == "running"
    assert load_state(settings.state_file).db.port == result.endpoint.port


def test_two_stacks_run_side_by_side(engine, make_stack):
    first, second = make_stack(), make_stack()
    a = stack.up(first, emit=quiet)
    b = stack.up(second, emit=quiet)
    assert a.endpoint.port != b.endpoint.port
    assert container_of(engine, first).id != container_of(engine, second).id
    assert healthy(first) and healthy(second)


def test_a_same_named_container_we_did_not_create_is_never_touched(engine, make_stack):
    settings = make_stack()
    image = engine.images.list()[0]
    stranger = engine.containers.create(image.id, name=docker_names(settings.stack)[0], command=["true"])
    try:
        with pytest.raises(BackendUnavailable, match="was not created by this harness"):
            stack.up(settings, emit=quiet)
        stranger.reload()
        assert stranger.status == "created"
    finally:
        stranger.remove(force=True, v=True)


def test_a_dead_container_is_reported_with_its_exit_code_and_log(engine, make_stack):
    from ops.backends.docker import DockerBackend
    from ops.errors import DatabaseError

    settings = make_stack()
    stack.up(settings, emit=quiet)
    container_of(engine, settings).kill()
    backend = DockerBackend(settings, load_state(settings.state_file).db)
    with pytest.raises(DatabaseError) as info:
        backend.assert_alive()
    assert "exit code 137" in info.value.message and "OOM killed: False" in info.value.message
    assert "database system is ready to accept connections" in info.value.evidence
    assert "database system is ready" in settings.logs_dir.joinpath("db.log").read_text()


def test_volume_in_use_is_a_clear_error_and_keeps_the_data(engine, make_stack):
    settings = make_stack()
    url = stack.up(settings, emit=quiet).endpoint.url()
    query(url, "CREATE TABLE keepsake (n int)")
    volume = docker_names(settings.stack)[1]
    holder = engine.containers.create(
        engine.images.list()[0].id, command=["true"], volumes={volume: {"bind": "/x", "mode": "ro"}}
    )
    try:
        stack.down(settings, emit=quiet)
        with pytest.raises(BackendUnavailable, match="refused to destroy"):
            stack.down(settings, volumes=True, emit=quiet)
        assert engine.volumes.get(volume)  # nothing lost
    finally:
        holder.remove(force=True, v=True)
    again = stack.up(settings, emit=quiet)
    assert query(again.endpoint.url(), "SELECT count(*) FROM keepsake") == [(0,)]


def test_auto_picks_docker_when_an_engine_answers_and_embedded_when_none_does(engine, tmp_path, monkeypatch):
    from ops.backends import select_backend
    from tests.support.stacks import stack_settings

    settings = stack_settings(tmp_path, backend="auto")
    backend, why = select_backend(settings, StackState())
    assert backend.name == "docker" and "a Docker engine answers" in why

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    backend, why = select_backend(settings, StackState())
    assert backend.name == "embedded" and "unix:///nonexistent/docker.sock" in why

    backend, why = select_backend(settings, StackState(db=DbRecord(backend="docker")))
    assert backend.name == "docker" and why == "the stack already uses it"


def test_the_whole_iliad_ingests_in_the_container(engine, make_stack):
    """Its parallel HNSW build needs more /dev/shm than 256 MB: a container given less failed here."""
    from app.ingest import ingest

    settings = make_stack()
    url = stack.up(settings, emit=quiet).endpoint.url()
    assert container_of(engine, settings).attrs["HostConfig"]["ShmSize"] >= 2**30
    ingest(url, "iliad")
    assert query(url, "SELECT count(*) FROM text_segment") == [(15686,)]
