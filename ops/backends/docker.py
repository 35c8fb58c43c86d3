"""PostgreSQL in a container, driven through the Docker SDK; the port is read, never guessed.

The container publishes 5432 on 127.0.0.1 with a host port the engine chooses, and the
harness reads the mapping back from the engine. Data lives in a named volume that
`down` keeps and `down --volumes` removes. Every object carries labels (stack, run id,
owner pid, creation time, image), so that leftovers of a crashed run are found by them.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from requests.exceptions import RequestException

from ops import labels
from ops.backends.base import DatabaseBackend, ServerFacts, Started
from ops.backends.docker_image import ImagePlan, ensure_image, plan_image
from ops.docker_engine import connect, engine_address, try_connect
from ops.endpoint import Endpoint
from ops.errors import BackendUnavailable, DatabaseError, OpsError
from ops.secrets import new_password, redact, stack_passwords
from ops.settings import Settings
from ops.state import DbRecord

T = TypeVar("T")
PGDATA = "/var/lib/postgresql/18/docker"
INITDB_ARGS = "--no-sync"  # what the entrypoint passes on to initdb, or honours in its copy
# /dev/shm: a parallel HNSW build (ingest, maintenance_work_mem 512 MB) puts its memory there;
# 256 MB made the whole-Iliad ingest fail with "could not resize shared memory segment".
SHM_SIZE = "1g"
VOLUME_MOUNT = "/var/lib/postgresql"
PORT_MAP_TIMEOUT_S = 10
ALIVE_RECHECK_S = 0.1  # a container seen running is not asked about again sooner (assert_alive)


def _engine_errors(method: Callable[..., T]) -> Callable[..., T]:
    """An engine that stops answering or refuses a request is one clear line, not a traceback."""

    @functools.wraps(method)
    def wrapper(self: DockerBackend, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except OpsError:
            raise
        except APIError as exc:
            action = method.__name__.strip("_").replace("_", " ")
            raise BackendUnavailable(
                f"the Docker engine refused to {action}: {str(exc.explanation or exc)[:200]}",
                "see `docker ps -a`, `docker volume ls` and `invoke logs -c db`",
            ) from None
        except (DockerException, RequestException) as exc:
            raise BackendUnavailable(
                f"the Docker engine stopped answering at {engine_address()} ({type(exc).__name__})",
                "start dockerd again, then run `invoke up`",
            ) from None

    return wrapper


class DockerBackend(DatabaseBackend):
    name = "docker"

    def __init__(
        self, settings: Settings, record: DbRecord | None = None, emit: Any = print, client: Any = None
    ) -> None:
        """`client`: an engine client to use (its owner closes it), e.g. diagnose's, with a short timeout."""
        self.settings = settings
        self.record = (record or DbRecord()).model_copy(deep=True)
        # A stack made before names were scoped keeps its recorded names (adopted, not lost).
        container, volume = labels.scoped_names(settings.stack, settings.project_dir)
        self.container_name = self.record.container_name or container
        self.volume_name = self.record.volume or volume
        self._log = settings.log_file("db")
        self._emit = emit
        self._client: Any = client
        self._plan: ImagePlan | None = None
        self._seen_running_at = -ALIVE_RECHECK_S  # monotonic time of the last "running" answer

    def can_deliver(self) -> tuple[bool, str]:
        """For `auto`: (True, why) when an engine answers and an image is present, pullable or
        buildable; else (False, why not). Nothing is built here; a pull that worked is kept."""
        client, reason = try_connect()
        if client is None:
            return False, f"no Docker engine answers at {engine_address()} ({reason})"
        self._client = client
        try:
            plan = self.image_plan()
        except (DockerException, RequestException) as exc:
            return False, f"the Docker engine at {engine_address()} failed a request ({type(exc).__name__})"
        if plan.tag is None:
            return False, f"a Docker engine answers at {engine_address()}, but {plan.note}"
        return True, f"a Docker engine answers at {engine_address()} and {plan.note}"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    @property
    def log_path(self) -> Path:
        return self._log

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- interface -------------------------------------------------------------------

    @_engine_errors
    def start(self) -> Started:
        container = self._find()
        notes: list[str] = []
        if container is not None and container.status == "running":
            password = self._password(container)
            reused = True
            notes.append(f"reused container {container.short_id}")
        else:
            if container is not None:
                notes.append(f"replaced stopped container {container.short_id}")
                password = self._password(container)
                container.remove(force=True)
            else:
                password = self.record.password or new_password()
            image, how = self._ensure_image()
            if how:
                notes.append(how)
            container = self._create(image, password)
            reused = False
            notes.append(f"started container {container.short_id} from {image}")
        port = self._mapped_port(container)
        self.record = self.record.model_copy(
            update={
                "backend": self.name,
                "host": self.settings.db_connect_host,
                "port": port,
                "user": self.settings.db_user,
                "database": self.settings.db_name,
                "password": password,
                "container_id": container.id,
                "container_name": self.container_name,
                "volume": self.volume_name,
            }
        )
        self.save_log()
        notes.append(f"{self.settings.db_host}:{port} -> 5432")
        endpoint = Endpoint(
            self.settings.db_connect_host, port, self.settings.db_user, password, self.settings.db_name
        )
        return Started(endpoint, reused, "; ".join(notes), self.record)

    @_engine_errors
    def assert_alive(self) -> None:
        """The container runs, or DatabaseError with its state and log. Asked of the engine at most
        every ALIVE_RECHECK_S: a wait polls the server every 20 ms, and each ask is a round trip
        that would otherwise delay the poll that finds the server ready."""
        if time.monotonic() - self._seen_running_at < ALIVE_RECHECK_S:
            return
        container = self._find()
        if container is None:
            raise DatabaseError(f"container {self.container_name} is gone", "run `invoke up` again")
        state = container.attrs.get("State", {})
        if container.status in ("running",) and not state.get("Restarting"):
            self._seen_running_at = time.monotonic()
            return
        self.save_log()
        raise DatabaseError(
            f"container {self.container_name} is {container.status} "
            f"(exit code {state.get('ExitCode')}, OOM killed: {state.get('OOMKilled')})",
            f"see {self._log}",
            evidence=self._container_log(container, self.settings.log_tail_lines),
        )

    @_engine_errors
    def is_running(self) -> bool:
        container = self._find()
        return container is not None and container.status == "running"

    @_engine_errors
    def stop(self) -> bool:
        container = self._find()
        if container is None:
            return False
        self.save_log()
        was_running = container.status == "running"
        container.stop(timeout=20)
        return was_running

    @_engine_errors
    def destroy(self) -> bool:
        removed = False
        container = self._find()
        if container is not None:
            container.remove(force=True)
            removed = True
        try:
            self.client.volumes.get(self.volume_name).remove(force=True)
            removed = True
        except NotFound:
            pass
        self.record = self.record.model_copy(
            update={"password": None, "reader_password": None, "port": None, "container_id": None}
        )
        return removed

    @_engine_errors
    def describe(self) -> ServerFacts:
        """The container of this stack's name as the engine sees it, never raising for one that is
        another's (its state says whose): id, state, exit code and published port."""
        facts = ServerFacts(
            self.name, running=False, container_name=self.container_name, volume=self.volume_name
        )
        try:
            container = self.client.containers.get(self.container_name)
        except NotFound:
            return replace(facts, container_state="absent")
        given, found = container.labels, replace(facts, container=container.short_id, ours=False)
        if given.get(labels.STACK) != self.settings.stack:
            return replace(found, container_state="not created by this harness")
        if given.get(labels.PROJECT) not in (None, str(self.settings.project_dir)):
            return replace(found, container_state=f"of another checkout ({given[labels.PROJECT]})")
        run_state = container.attrs.get("State", {})
        return replace(
            found,
            ours=True,
            container_name=container.name,
            container_state=container.status,
            running=container.status == "running",
            exit_code=run_state.get("ExitCode"),
            oom_killed=run_state.get("OOMKilled"),
            port=self._published_port(container),
        )

    @_engine_errors
    def save_log(self) -> None:
        """Copy the container's log into .ops/logs/db.log (redacted)."""
        container = self._find()
        if container is None:
            return
        self._log.parent.mkdir(parents=True, exist_ok=True)
        self._log.write_text(self._container_log(container, 2000), encoding="utf-8")

    # --- internals -------------------------------------------------------------------

    def _find(self) -> Container | None:
        """This stack's container, or None. A same-named container of another checkout or stack, or
        one the harness did not create, is never touched: an error (or, for a name recorded before
        names were scoped, a sign that another checkout owns it, so this one gets its own)."""
        try:
            container = self.client.containers.get(self.container_name)
        except NotFound:
            return None
        found = container.labels
        if found.get(labels.STACK) == self.settings.stack and found.get(labels.PROJECT) in (
            None,
            str(self.settings.project_dir),
        ):
            return container
        scoped = labels.scoped_names(self.settings.stack, self.settings.project_dir)
        if found.get(labels.STACK) and self.container_name != scoped[0]:
            self.container_name, self.volume_name = scoped
            return self._find()
        owner = found.get(labels.PROJECT)
        raise BackendUnavailable(
            f"a container named {self.container_name} exists but "
            + (f"belongs to the checkout {owner}" if owner else "was not created by this harness"),
            "it is left untouched: remove or rename it, or use another --stack",
        )

    def _password(self, container: Container) -> str:
        """The stack's password; recovered from our own container if the state lost it."""
        if self.record.password:
            return self.record.password
        for item in container.attrs.get("Config", {}).get("Env", []):
            if item.startswith("POSTGRES_PASSWORD="):
                return str(item.split("=", 1)[1])
        return new_password()

    def _container_log(self, container: Container, lines: int) -> str:
        try:
            raw = container.logs(tail=lines, stdout=True, stderr=True)
        except APIError:
            return ""
        return redact(raw.decode("utf-8", errors="replace"), stack_passwords(self.record.model_dump()))

    def image_plan(self) -> ImagePlan:
        """The image this stack runs, and how it is had (ops.backends.docker_image); asked once."""
        if self._plan is None:
            self._plan = plan_image(self.client, self.settings, self._emit)
        return self._plan

    def _ensure_image(self) -> tuple[str, str]:
        """The image to run and a note on how it was had; BackendUnavailable when none can be."""
        return ensure_image(self.client, self.image_plan(), self.settings, self._emit)

    def _create(self, image: str, password: str) -> Container:
        if not self._volume_exists():
            scope = labels.scope_labels(self.settings.stack, self.settings.project_dir)
            self.client.volumes.create(self.volume_name, labels={**scope, labels.KIND: "pgdata"})
        try:
            return self.client.containers.run(
                image,
                detach=True,
                name=self.container_name,
                labels=labels.container_labels(
                    self.settings.stack, self.settings.project_dir, secrets.token_hex(6), image
                ),
                environment={
                    "POSTGRES_USER": self.settings.db_user,
                    "POSTGRES_PASSWORD": password,
                    "POSTGRES_DB": self.settings.db_name,
                    "PGDATA": PGDATA,
                    # As the embedded backend's initdb: a new cluster is not flushed to disk at
                    # its creation (~40 ms of the first start; it holds nothing yet), while
                    # PostgreSQL's own fsyncs keep everything written to it from then on.
                    "POSTGRES_INITDB_ARGS": INITDB_ARGS,
                },
                ports={"5432/tcp": (self.settings.db_host, None)},  # loopback unless opted out
                volumes={self.volume_name: {"bind": VOLUME_MOUNT, "mode": "rw"}},
                shm_size=SHM_SIZE,
            )
        except APIError as exc:
            raise DatabaseError(
                f"the engine could not start the container: {str(exc.explanation or exc)[:200]}",
                "see `docker ps -a` and `invoke logs -c db`",
            ) from None

    def _volume_exists(self) -> bool:
        try:
            self.client.volumes.get(self.volume_name)
            return True
        except NotFound:
            return False

    def _published_port(self, container: Container) -> int | None:
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get("5432/tcp") or []
        for binding in bindings:
            if binding.get("HostIp") in (self.settings.db_host, "") and binding.get("HostPort"):
                return int(binding["HostPort"])
        return None

    def _mapped_port(self, container: Container) -> int:
        """The host port the engine mapped, read back after start (retried until present)."""
        deadline = time.monotonic() + PORT_MAP_TIMEOUT_S
        while True:
            container.reload()
            port = self._published_port(container)
            if port:
                return port
            if container.status in ("exited", "dead"):
                self.assert_alive()
            if time.monotonic() > deadline:
                raise DatabaseError(
                    f"the engine reported no host port for {self.container_name}:5432",
                    "see `docker inspect` of the container",
                )
            time.sleep(0.02)


def remove_all(client: Any, dry_run: bool = False) -> list[str]:
    """`down --all`: every container and volume this harness labelled, with the checkout of each
    (only listed, with `dry_run`)."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": labels.STACK}):
        if not dry_run:
            container.remove(force=True)
        removed.append(f"container {container.name} ({_owner(container.labels)})")
    for volume in client.volumes.list(filters={"label": labels.STACK}):
        if not dry_run:
            volume.remove(force=True)
        removed.append(f"volume {volume.name} ({_owner(volume.attrs.get('Labels') or {})})")
    return removed


def _owner(found: dict[str, str]) -> str:
    checkout = found.get(labels.PROJECT) or "unknown (made before checkouts were recorded)"
    return f"stack {found.get(labels.STACK)}, checkout {checkout}"
