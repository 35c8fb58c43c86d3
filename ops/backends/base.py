"""The one small interface every source of PostgreSQL implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from ops.endpoint import Endpoint
from ops.state import DbRecord


@dataclass(frozen=True)
class ServerFacts:
    """What a backend sees of its server without connecting to it: for `up --plan` and diagnose.

    `running` is None when the server is not the harness's to watch (external); `port` is where it
    listens now (the engine's published port, postmaster.pid's), None while it is not running."""

    backend: str
    running: bool | None
    port: int | None = None
    pid: int | None = None  # embedded: the postmaster's
    data_dir: str | None = None  # embedded: the cluster's directory
    container: str | None = None  # docker: the container's short id, when one of that name exists
    container_name: str | None = None  # docker: the name this stack's container has (or gets)
    container_state: str | None = None  # docker: running, exited, ..., absent, or whose it is
    ours: bool = True  # docker: False for a same-named container of another stack or checkout
    exit_code: int | None = None  # docker: the container's last exit code
    oom_killed: bool | None = None  # docker: whether the kernel killed it for memory
    volume: str | None = None  # docker: the data volume
    hosts: tuple[tuple[str, int], ...] = ()  # external: every host of the DSN, in libpq's order
    where: str | None = None  # external: `host:port`, or `h1:5432,h2:5433`


@dataclass(frozen=True)
class Started:
    """What `DatabaseBackend.start` did, and the record the state file keeps of the server."""

    endpoint: Endpoint
    reused: bool
    detail: str
    record: DbRecord


class DatabaseBackend(ABC):
    """Starts, checks and stops one stack's PostgreSQL.

    A backend is given the stack's last `DbRecord` and keeps its own, `record`, up to date;
    `start` returns it, and the caller stores it in the state and saves.
    """

    name: str
    record: DbRecord
    owns_server = True  # the harness starts and stops this server (not so for an external one)

    @abstractmethod
    def start(self) -> Started:
        """Start the server, or reuse it when it already runs; return its endpoint."""

    @abstractmethod
    def assert_alive(self) -> None:
        """Raise DatabaseError (with the log tail) if the server has died; used inside waits."""

    @abstractmethod
    def is_running(self) -> bool:
        """A cheap, local check that the server process or container is up."""

    @abstractmethod
    def stop(self) -> bool:
        """Stop the server, keeping its data; True if something was stopped."""

    @abstractmethod
    def destroy(self) -> bool:
        """Delete the stack's data; True if something was deleted."""

    @abstractmethod
    def describe(self) -> ServerFacts:
        """What runs where, read locally or from the engine (pid or container, state, data)."""

    def planned_endpoint(self) -> Endpoint | None:
        """The owner's endpoint if it is known before `start` returns (so the API can start and
        import meanwhile); None when only starting tells (e.g. a port the engine maps)."""
        return None

    def save_log(self) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Bring the server's log up to date in the stack's logs directory (if kept elsewhere)."""

    @property
    @abstractmethod
    def log_path(self) -> Path | None:
        """Where the server's log is, if the harness keeps one."""
