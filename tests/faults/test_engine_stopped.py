"""The Docker engine stops answering in the middle of a run, and between runs.

The harness talks to the real engine through a relay on its own socket (DOCKER_HOST points
at it); killing the relay makes the engine vanish for the harness, exactly as a stopped
dockerd's socket does, without taking the shared engine away from the rest of the suite.
The relay passes bytes through untouched: every request is the real engine's.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.invoke import spawn
from tests.support.output import one_line_error, report, step_lines
from tests.support.procs import kill_quietly, wait_for
from tests.support.project import read_state
from tests.support.stacks import docker_names

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ENGINE_SOCKET = "/var/run/docker.sock"

RELAY = r"""
import socket, sys, threading

listen_path, engine_path = sys.argv[1], sys.argv[2]


def pump(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


server = socket.socket(socket.AF_UNIX)
server.bind(listen_path)
server.listen(64)
print("ready", flush=True)
while True:
    client, _ = server.accept()
    engine = socket.socket(socket.AF_UNIX)
    engine.connect(engine_path)
    threading.Thread(target=pump, args=(client, engine), daemon=True).start()
    threading.Thread(target=pump, args=(engine, client), daemon=True).start()
"""


class Relay:
    """A byte relay from a private socket to the real engine's; `stop()` is the engine going away."""

    def __init__(self, socket_path: Path) -> None:
        self.path = socket_path
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.path.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-c", RELAY, str(self.path), ENGINE_SOCKET],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        if self.process is not None:
            kill_quietly(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None
        self.path.unlink(missing_ok=True)


@pytest.fixture
def engine_project(project, tmp_path) -> Iterator:
    """A docker stack whose DOCKER_HOST is a relay to the real engine."""
    from ops.docker_engine import try_connect
    from ops.image import ensure_offline_image

    client, reason = try_connect(timeout=10)
    if client is None:
        pytest.skip(f"NO DOCKER ENGINE ANSWERS ({reason})")
    tag, _built = ensure_offline_image(client)
    relay = Relay(tmp_path / "engine.sock")
    relay.start()
    stack = f"e{secrets.token_hex(4)}"
    project.env.update(
        OPS_BACKEND="docker", OPS_STACK=stack, OPS_DOCKER_IMAGE=tag, DOCKER_HOST=f"unix://{relay.path}"
    )
    project.client, project.relay = client, relay
    project.container_name = docker_names(stack, project.root)[0]
    try:
        yield project
    finally:
        relay.stop()
        relay.start()
        project.invoke("down", "--volumes", timeout=120)
        relay.stop()
        client.close()


def _container(project):
    from docker.errors import NotFound

    try:
        return project.client.containers.get(project.container_name)
    except NotFound:
        return None


def test_engine_stopping_during_up_is_exit_3_in_one_line_and_the_next_up_reuses_the_container(
    engine_project,
):
    """The engine goes away as soon as the container exists: `up` ends at once, exit 3."""
    project = engine_project
    running = spawn(project, "up")
    wait_for(lambda: _container(project) or running.process.poll() is not None, timeout=120, every=0.005)
    project.relay.stop()
    stopped_at = time.monotonic()
    code = running.wait(timeout=120)
    report("engine stopped during up", time.monotonic() - stopped_at, exit=code)

    assert code == 3, running.stdout + running.stderr
    assert one_line_error(running.stderr), running.stderr
    assert "the Docker engine stopped answering" in running.stderr.strip().splitlines()[-1]
    steps = read_state(project)["steps"]
    assert [step["status"] for step in steps][-1] == "FAIL", steps
    assert "db-ready" not in step_lines(running.stdout) or step_lines(running.stdout)["db-ready"] == "FAIL"

    project.relay.start()
    healed = project.invoke("up", timeout=180)
    assert healed.returncode == 0, healed.stderr
    assert step_lines(healed.stdout)["db"] in ("OK", "SKIP")
    containers = project.client.containers.list(all=True, filters={"name": project.container_name})
    assert len(containers) == 1, containers


def test_engine_stopped_between_runs_every_command_says_so_and_nothing_is_lost(engine_project):
    """status, diagnose, logs, migrate, up and down with no engine: a clear answer, no hang."""
    project = engine_project
    assert project.invoke("up", timeout=180).returncode == 0
    project.relay.stop()

    # The relay's engine is one with live-restore: the container (so PostgreSQL) keeps serving.
    expected = {
        ("status",): 0,  # read from the state file and live probes: no engine needed
        ("diagnose",): 1,  # degraded: the engine cannot be asked about the container
        ("migrate",): 3,
        ("up",): 3,
        ("down",): 3,  # the API is stopped first; the container cannot be
    }
    for argv, code in expected.items():
        started = time.monotonic()
        result = project.invoke(*argv, timeout=60)
        report(f"no engine: invoke {' '.join(argv)}", time.monotonic() - started, exit=result.returncode)
        assert "Traceback" not in result.stderr, (argv, result.stderr)
        assert result.returncode == code, (argv, result.stdout, result.stderr)
        if code == 3:
            assert one_line_error(result.stderr), (argv, result.stderr)
            assert "Docker engine" in result.stderr.strip().splitlines()[-1], (argv, result.stderr)
        if argv == ("diagnose",):
            print(result.stdout)
            assert "Docker engine" in result.stdout, result.stdout

    project.relay.start()
    assert project.invoke("up", timeout=180).returncode == 0
    assert project.invoke("status").returncode == 0
