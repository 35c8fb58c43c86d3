"""PostgreSQL in a container, driven through the Docker SDK; the port is read, never guessed.

The container publishes 5432 on 127.0.0.1 with a host port the engine chooses, and the
harness reads the mapping back from the engine. Data lives in a named volume that
`down` keeps and `down --volumes` removes. Every object carries labels (stack, run id,
owner pid, creation time, image), so that leftovers of a crashed run are found by them.
"""

from __future__ import annotations

import functools
import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from requests.exceptions import RequestException

from ops.backends.base import DatabaseBackend, Endpoint, Started
from ops.engine import connect, engine_address
from ops.errors import BackendUnavailable, DatabaseError, OpsError
from ops.secrets import PASSWORD_KEYS, new_password, redact, stack_passwords
from ops.settings import Settings

T = TypeVar("T")
LABEL = "homer-ops"
PGDATA = "/var/lib/postgresql/18/docker"
# /dev/shm: a parallel HNSW build (ingest, maintenance_work_mem 512 MB) puts its memory there;
# 256 MB made the whole-Iliad ingest fail with "could not resize shared memory segment".
SHM_SIZE = "1g"
VOLUME_MOUNT = "/var/lib/postgresql"
PORT_MAP_TIMEOUT_S = 10


def labels_for(settings: Settings, run_id: str, image: str) -> dict[str, str]:
    return {
        f"{LABEL}.stack": settings.stack,
        f"{LABEL}.run-id": run_id,
        f"{LABEL}.owner-pid": str(os.getpid()),
        f"{LABEL}.created": datetime.now(UTC).isoformat(timespec="seconds"),
        f"{LABEL}.image": image,
        f"{LABEL}.project": str(settings.project_dir),
    }


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

    def __init__(self, settings: Settings, state: dict[str, Any], emit: Any = print) -> None:
        self.settings = settings
        self.db: dict[str, Any] = state.setdefault("db", {})
        self.container_name = f"{LABEL}-{settings.stack}-db"
        self.volume_name = f"{LABEL}-{settings.stack}-pgdata"
        self._log = settings.logs_dir / "db.log"
        self._emit = emit
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    @property
    def log_path(self) -> Path:
        return self._log

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
                password = self.db.get("password") or new_password()
            image, how = self._ensure_image()
            if how:
                notes.append(how)
            container = self._create(image, password)
            reused = False
            notes.append(f"started container {container.short_id} from {image}")
        port = self._mapped_port(container)
        self.db.update(
            backend=self.name,
            host=self.settings.db_connect_host,
            port=port,
            user=self.settings.db_user,
            database=self.settings.db_name,
            password=password,
            container_id=container.id,
            container_name=self.container_name,
            volume=self.volume_name,
        )
        self.save_log()
        notes.append(f"{self.settings.db_host}:{port} -> 5432")
        endpoint = Endpoint(
            self.settings.db_connect_host, port, self.settings.db_user, password, self.settings.db_name
        )
        return Started(endpoint, reused, "; ".join(notes))

    @_engine_errors
    def assert_alive(self) -> None:
        container = self._find()
        if container is None:
            raise DatabaseError(f"container {self.container_name} is gone", "run `invoke up` again")
        state = container.attrs.get("State", {})
        if container.status in ("running",) and not state.get("Restarting"):
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
        for key in (*PASSWORD_KEYS, "port", "container_id"):
            self.db.pop(key, None)
        return removed

    @_engine_errors
    def describe(self) -> dict[str, Any]:
        container = self._find()
        if container is None:
            return {"backend": self.name, "container": None, "running": False}
        return {
            "backend": self.name,
            "container": container.short_id,
            "name": self.container_name,
            "state": container.status,
            "running": container.status == "running",
            "port": self._published_port(container),
            "volume": self.volume_name,
        }

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
        """This stack's container, or None. A same-named container we did not create is an error."""
        try:
            container = self.client.containers.get(self.container_name)
        except NotFound:
            return None
        if container.labels.get(f"{LABEL}.stack") != self.settings.stack:
            raise BackendUnavailable(
                f"a container named {self.container_name} exists but was not created by this harness",
                "it is left untouched: remove or rename it, or use another --stack",
            )
        return container

    def _password(self, container: Container) -> str:
        """The stack's password; recovered from our own container if the state lost it."""
        if self.db.get("password"):
            return str(self.db["password"])
        for item in container.attrs.get("Config", {}).get("Env", []):
            if item.startswith("POSTGRES_PASSWORD="):
                return str(item.split("=", 1)[1])
        return new_password()

    def _container_log(self, container: Container, lines: int) -> str:
        try:
            raw = container.logs(tail=lines, stdout=True, stderr=True)
        except APIError:
            return ""
        return redact(raw.decode("utf-8", errors="replace"), stack_passwords(self.db))

    def _ensure_image(self) -> tuple[str, str]:
        """The configured image, pulled if missing; else the offline image, built if missing."""
        image = self.settings.docker_image
        try:
            self.client.images.get(image)
            return image, ""
        except ImageNotFound:
            pass
        try:
            self._emit(f"pulling {image} ...")
            self.client.images.pull(image)
            return image, f"pulled {image}"
        except APIError as exc:
            reason = str(exc.explanation or exc)[:120]
        from ops.image import ensure_offline_image

        self._emit(f"{image} cannot be pulled ({reason}); using the offline image instead")
        tag, built = ensure_offline_image(self.client, progress=self._emit)
        verb = "built" if built else "using"
        return tag, f"{image} cannot be pulled ({reason}); {verb} the offline image {tag}"

    def _create(self, image: str, password: str) -> Container:
        if not self._volume_exists():
            self.client.volumes.create(
                self.volume_name, labels={f"{LABEL}.stack": self.settings.stack, f"{LABEL}.kind": "pgdata"}
            )
        try:
            return self.client.containers.run(
                image,
                detach=True,
                name=self.container_name,
                labels=labels_for(self.settings, secrets.token_hex(6), image),
                environment={
                    "POSTGRES_USER": self.settings.db_user,
                    "POSTGRES_PASSWORD": password,
                    "POSTGRES_DB": self.settings.db_name,
                    "PGDATA": PGDATA,
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


def remove_all(client: Any) -> list[str]:
    """`down --all`: every container and volume this harness labelled."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}.stack"}):
        container.remove(force=True)
        removed.append(f"container {container.name}")
    for volume in client.volumes.list(filters={"label": f"{LABEL}.stack"}):
        volume.remove(force=True)
        removed.append(f"volume {volume.name}")
    return removed
