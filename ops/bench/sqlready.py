"""Docker only: create → SQL-ready, the harness against testcontainers-python, side by side.

Three ways to get a PostgreSQL that answers `SELECT 1` from nothing, on the same image (the
offline image, built if missing) and in the same run, after one untimed round of each, their
order rotated each repeat:

- **harness**: the real docker backend, `DockerBackend(settings).start()` on a throwaway stack
  (unique `bench-*` name, temporary state dir) and then `ops.dbcheck.wait_ready` with the
  harness's own wait policy, as `invoke up`'s `db` and `db-ready` steps do; `destroy()` after.
- **replica**: the same engine calls made one by one, so that each is timed: a named volume,
  `containers.create`, `start`, the published port read back from the engine, then a psycopg
  `SELECT 1` as the app's role every 20 ms.
- **testcontainers**: `PostgresContainer(image, username, password, dbname).start()`, then its
  connection URL until `SELECT 1` answers. Ryuk, its reaper container, is disabled
  (`TESTCONTAINERS_RYUK_DISABLED=true`): its image would come from a registry, which an offline
  machine cannot reach. It is told to use 127.0.0.1 (`TESTCONTAINERS_HOST_OVERRIDE`, docker_host
  mode) and its port is published on 127.0.0.1 only, like the harness's; nothing else is changed.

Besides the client's stopwatch, each container's own clocks say where the time went: the engine's
`State.StartedAt` (the entrypoint starts) and the log lines' engine timestamps (the entrypoint's
"initialising" and "initialisation complete", PostgreSQL's "ready to accept connections").

Nothing is removed until every run is done: each first start creates about 1,300 files, and some
filesystems (ext4 without a journal, as on the machine these figures come from) skip the inodes
freed in the last minute when they allocate new ones, so one run's teardown would slow the next
run's file creation and measure the bench's own churn rather than a first start. Every container
and volume carries the label `homer-ops.bench-run=<run id>` (the harness's, its stack name) and is
removed at the end, also after a failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from docker.errors import DockerException, NotFound
from requests.exceptions import RequestException

from ops.bench.polling import until as poll_until
from ops.bench.stats import medians, ratio
from ops.errors import DatabaseError, OpsError
from ops.labels import BENCH_RUN, selector
from ops.signals import sigint_held

POLL_S = 0.02
READY_TIMEOUT_S = 60.0
TESTCONTAINERS_ENV = {
    "TESTCONTAINERS_RYUK_DISABLED": "true",  # its reaper image would have to be pulled
    "TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
    "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
}
RYUK_NOTE = (
    "Ryuk (testcontainers' reaper container) disabled with TESTCONTAINERS_RYUK_DISABLED=true: "
    "its image comes from a registry; the bench removes every container itself"
)
WAYS = ("harness", "replica", "testcontainers")
# Log lines that mark the container's own milestones (the entrypoint's, then PostgreSQL's).
MILESTONES = (
    ("initialising", "[entrypoint] initialising"),
    ("initialised", "[entrypoint] initialisation complete"),
    ("ready", "database system is ready to accept connections"),
)

Say = Callable[[str], None]
Figures = dict[str, float]


def why_not(client: Any) -> str | None:
    """None when the section can run; else why it is skipped."""
    if client is None:
        return "no Docker engine answers"
    try:
        importlib.metadata.version("testcontainers")
    except importlib.metadata.PackageNotFoundError:
        return "testcontainers is not installed (`pip install -e '.[dev]'`)"
    return None


def sql_ready_figures(project: Path, client: Any, image: str, repeats: int, say: Say) -> dict[str, Any]:
    """Create → SQL-ready for the harness, its replica and testcontainers; medians and the ratio."""
    run_id = secrets.token_hex(4)
    runs: dict[str, list[Figures]] = {way: [] for way in WAYS}
    cleanup = ExitStack()
    measure: dict[str, Callable[[], Figures]] = {
        "harness": lambda: harness_once(project, image, run_id, cleanup),
        "replica": lambda: replica_once(client, image, run_id, cleanup),
        "testcontainers": lambda: testcontainers_once(image, run_id, cleanup),
    }
    try:
        for way in WAYS:  # one untimed round first: imports, connections, the image's page cache
            measure[way]()
        for index in range(repeats):
            order = WAYS[index % len(WAYS) :] + WAYS[: index % len(WAYS)]  # rotated each repeat
            for way in order:
                runs[way].append(measure[way]())
            say(
                f"  repeat {index + 1}: "
                + ", ".join(f"{way} {runs[way][-1]['total_s']:.2f} s" for way in WAYS)
            )
    finally:
        with sigint_held():
            cleanup.close()
            sweep(client, run_id)
    phases = {way: medians(runs[way]) for way in WAYS}
    harness, testcontainers = phases["harness"]["total_s"], phases["testcontainers"]["total_s"]
    return {
        "image": image,
        "repeats": repeats,
        "testcontainers_version": importlib.metadata.version("testcontainers"),
        "note": RYUK_NOTE,
        "harness_s": harness,
        "replica_s": phases["replica"]["total_s"],
        "testcontainers_s": testcontainers,
        "ratio": ratio(testcontainers, harness),
        "phases": phases,
        "runs": {f"{way}_s": [round(run["total_s"], 3) for run in runs[way]] for way in WAYS},
    }


# --- the three ways --------------------------------------------------------------------------


def harness_once(project: Path, image: str, run_id: str, cleanup: ExitStack) -> Figures:
    """The docker backend's own start() and the harness's wait_ready, timed; destroyed by `cleanup`."""
    from ops.backends.docker import DockerBackend
    from ops.dbcheck import wait_ready
    from ops.settings import build_settings
    from ops.waiting import WaitPolicy

    state_dir = Path(tempfile.mkdtemp(prefix="bench-sqlready-"))
    flags = {"state_dir": str(state_dir), "stack": f"bench-{run_id}-{secrets.token_hex(3)}"}
    settings = build_settings(project, flags={**flags, "backend": "docker", "docker_image": image})
    policy = WaitPolicy(
        settings.retry_attempts, settings.db_ready_timeout, settings.wait_initial, settings.wait_max
    )
    began, wall = time.perf_counter(), time.time()
    empty: Any = {}  # no recorded state: a new stack (the backend takes a state dict or a record)
    backend = DockerBackend(settings, empty, emit=_quiet)

    @cleanup.callback
    def _destroy() -> None:
        with contextlib.suppress(OpsError):
            backend.destroy()
        backend.close()
        shutil.rmtree(state_dir, ignore_errors=True)

    started = backend.start()
    returned = time.perf_counter()
    wait_ready(started.endpoint, policy, backend.assert_alive)
    ready = time.perf_counter()
    container = backend.client.containers.get(backend.container_name)
    return {
        "start_call_s": returned - began,
        "first_sql_s": ready - returned,
        "total_s": ready - began,
        **container_clocks(container, wall, wall + (ready - began)),
    }


def replica_once(client: Any, image: str, run_id: str, cleanup: ExitStack) -> Figures:
    """DockerBackend's engine calls one by one (volume, create, start, port), then SELECT 1."""
    from ops.backends.docker import INITDB_ARGS, PGDATA, SHM_SIZE, VOLUME_MOUNT

    name, password = f"bench-replica-{run_id}-{secrets.token_hex(3)}", secrets.token_hex(12)
    labels = {BENCH_RUN: run_id}
    began, wall = time.perf_counter(), time.time()
    client.volumes.create(name, labels=labels)
    volume_made = time.perf_counter()

    @cleanup.callback
    def _remove_volume() -> None:  # after the container's removal (an ExitStack runs last in, first out)
        with contextlib.suppress(NotFound, DockerException, RequestException):
            client.volumes.get(name).remove(force=True)

    container = client.containers.create(
        image,
        detach=True,
        name=name,
        labels=labels,
        environment={
            "POSTGRES_USER": "homer",
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": "homer",
            "PGDATA": PGDATA,
            "POSTGRES_INITDB_ARGS": INITDB_ARGS,
        },
        ports={"5432/tcp": ("127.0.0.1", None)},
        volumes={name: {"bind": VOLUME_MOUNT, "mode": "rw"}},
        shm_size=SHM_SIZE,
    )
    created = time.perf_counter()
    cleanup.callback(_remove, container)
    container.start()
    started = time.perf_counter()
    port = until(lambda: published_port(container), "the engine to publish 5432")
    mapped = time.perf_counter()
    until(lambda: select_one(port, "homer", password, "homer"), "SELECT 1 in the replica's container")
    ready = time.perf_counter()
    return {
        "volume_create_s": volume_made - began,
        "container_create_s": created - volume_made,
        "container_start_s": started - created,
        "port_mapping_s": mapped - started,
        "first_sql_s": ready - mapped,
        "total_s": ready - began,
        **container_clocks(container, wall, wall + (ready - began)),
    }


def testcontainers_once(image: str, run_id: str, cleanup: ExitStack) -> Figures:
    """PostgresContainer(...).start(), then its URL until SELECT 1 answers; stopped by `cleanup`."""
    PostgresContainer = import_postgres_container()
    password = secrets.token_hex(12)
    began, wall = time.perf_counter(), time.time()
    postgres = PostgresContainer(
        image=image,
        username="homer",
        password=password,
        dbname="homer",
        driver=None,
        name=f"bench-tc-{run_id}-{secrets.token_hex(3)}",
        labels={BENCH_RUN: run_id},
    )
    postgres.ports = {"5432/tcp": ("127.0.0.1", None)}  # loopback only, as the harness publishes it

    @cleanup.callback
    def _stop() -> None:
        with contextlib.suppress(DockerException, RequestException):
            postgres.stop()  # the container and its anonymous volume

    postgres.start()
    returned = time.perf_counter()
    url = postgres.get_connection_url()
    until(lambda: select_one_url(url), "SELECT 1 through testcontainers' connection URL")
    ready = time.perf_counter()
    return {
        "start_call_s": returned - began,
        "first_sql_s": ready - returned,
        "total_s": ready - began,
        **container_clocks(postgres.get_wrapped_container(), wall, wall + (ready - began)),
    }


def import_postgres_container() -> Any:
    """testcontainers' PostgresContainer, configured for this machine (see the module's docstring)."""
    os.environ.update(TESTCONTAINERS_ENV)  # read when testcontainers is imported...
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # before testcontainers 4.14 it lived at testcontainers.postgres
        from testcontainers.postgres import PostgresContainer
    from testcontainers.core.config import ConnectionMode
    from testcontainers.core.config import testcontainers_config as config

    config.ryuk_disabled = True  # ... and set again in case it was imported before
    config.tc_host_override = "127.0.0.1"
    config.connection_mode_override = ConnectionMode.docker_host
    return PostgresContainer


# --- what the containers' clocks say -----------------------------------------------------------


def parse_engine_time(stamp: str) -> float:
    """An engine timestamp (RFC 3339 with nanoseconds, `Z`) as seconds since the epoch."""
    stamp = stamp.strip().replace("Z", "+00:00")
    head, _, zone = stamp.partition("+")
    if "." in head:
        whole, fraction = head.split(".", 1)
        head = f"{whole}.{fraction[:6]}"
    return datetime.fromisoformat(f"{head}+{zone or '00:00'}").timestamp()


def log_milestones(logs: str) -> Figures:
    """The engine timestamps of the first log line containing each milestone."""
    found: Figures = {}
    for line in logs.splitlines():
        stamp, _, text = line.partition(" ")
        for key, marker in MILESTONES:
            if key not in found and marker in text:
                with contextlib.suppress(ValueError):
                    found[key] = parse_engine_time(stamp)
    return found


def clocks_from(began: float, ended: float, started_at: str, logs: str) -> Figures:
    """Phases on the wall clock: until the entrypoint runs, its set-up until it starts initialising,
    the initialisation, the server's start, and from PostgreSQL's readiness until the client's
    SELECT 1 answered (its polling and the connection)."""
    try:
        started = parse_engine_time(started_at)
    except ValueError:
        return {}
    marks = log_milestones(logs)
    figures = {"until_entrypoint_runs_s": started - began}
    if "initialising" in marks:
        figures["entrypoint_setup_s"] = marks["initialising"] - started
    if "initialised" in marks:
        figures["entrypoint_init_s"] = marks["initialised"] - marks.get("initialising", started)
    if "ready" in marks:
        figures["server_start_s"] = marks["ready"] - marks.get("initialised", started)
        figures["after_server_ready_s"] = ended - marks["ready"]
    return {key: round(value, 4) for key, value in figures.items()}


def container_clocks(container: Any, began: float, ended: float) -> Figures:
    try:
        container.reload()
        logs = container.logs(timestamps=True, stdout=True, stderr=True).decode("utf-8", "replace")
        return clocks_from(began, ended, container.attrs["State"]["StartedAt"], logs)
    except (DockerException, RequestException, KeyError):
        return {}


# --- helpers -----------------------------------------------------------------------------------


def until(probe: Callable[[], Any], what: str) -> Any:
    return poll_until(probe, what, DatabaseError, POLL_S, READY_TIMEOUT_S)


def published_port(container: Any) -> int | None:
    container.reload()
    if container.status in ("exited", "dead"):
        raise DatabaseError(f"the bench's container {container.name} exited while starting")
    bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get("5432/tcp") or []
    return next((int(b["HostPort"]) for b in bindings if b.get("HostPort")), None)


def select_one(port: int, user: str, password: str, database: str) -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user=user, password=password, dbname=database, connect_timeout=2
        ) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError as exc:
        if "password authentication failed" in str(exc):
            raise DatabaseError(f"the bench's container refused its password: {exc}") from None
        return False


def select_one_url(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def _remove(container: Any) -> None:
    with contextlib.suppress(NotFound, DockerException, RequestException):
        container.remove(force=True, v=True)


def sweep(client: Any, run_id: str) -> None:
    """Remove whatever this run left behind (a failure half-way), by its label."""
    by_run = selector(BENCH_RUN, run_id)
    with contextlib.suppress(DockerException, RequestException):
        for container in client.containers.list(all=True, filters=by_run):
            _remove(container)
        for volume in client.volumes.list(filters=by_run):
            with contextlib.suppress(NotFound):
                volume.remove(force=True)


def _quiet(_line: str) -> None:
    pass
