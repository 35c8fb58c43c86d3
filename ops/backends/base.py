"""The one small interface every source of PostgreSQL implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.driver import DRIVER
from ops.secrets import MASK
from ops.state import DbRecord


@dataclass(frozen=True)
class Endpoint:
    """Where the app's own path reaches the database: host, port, role, password, database, and
    every other libpq parameter the user gave (TLS, `target_session_attrs`, `options`, ...).

    A multi-host DSN (libpq's `h1:5432,h2:5433`) keeps its first host in `host`/`port` and the
    others, in libpq's order of trying, in `more_hosts`; every connection is handed all of them."""

    host: str
    port: int
    user: str
    password: str
    database: str
    params: Mapping[str, str] = field(default_factory=dict)
    more_hosts: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """The endpoint of a normalised DSN (`ops.dsn.normalise`): its hosts, role and parameters."""
        from sqlalchemy.engine import make_url

        from ops.dsn import hosts_of, params_of

        parsed = make_url(url)
        (host, port), *more_hosts = hosts_of(parsed)
        return cls(
            host=host,
            port=port,
            user=parsed.username or "postgres",
            password=parsed.password or "",
            database=parsed.database or "postgres",
            params=params_of(parsed),
            more_hosts=tuple(more_hosts),
        )

    @property
    def hosts(self) -> tuple[tuple[str, int], ...]:
        return ((self.host, self.port), *self.more_hosts)

    @property
    def where(self) -> str:
        """`host:port`, or libpq's `h1:5432,h2:5433` for several hosts."""
        from app.replication import address

        return ",".join(address(host, port) for host, port in self.hosts)

    def url(self) -> str:
        """SQLAlchemy URL for the sync psycopg driver (contains the password), with every parameter.

        Built with the standard library, in the form `sqlalchemy.engine.make_url` reads back (its
        fields percent-encoded), so neither `up` nor the API's branch needs SQLAlchemy to make it:
        two threads importing SQLAlchemy at once can meet its circular imports half-initialised.
        """
        from urllib.parse import quote

        return self._render(quote(self.password, safe=""))

    def masked_url(self) -> str:
        """The URL to show: the password as ***, every parameter."""
        return self._render(MASK)

    def for_writes(self) -> Endpoint:
        """This endpoint for connections that write: with several hosts (or a standby-seeking
        `target_session_attrs`), libpq is asked for the read-write server."""
        from ops.dsn import writer_params

        params = writer_params(dict(self.params), bool(self.more_hosts))
        return self if params == dict(self.params) else replace(self, params=params)

    def only(self, host: str, port: int) -> Endpoint:
        """This endpoint narrowed to one of its hosts, whatever its role (for a per-host probe)."""
        params = {key: value for key, value in self.params.items() if key != "target_session_attrs"}
        return replace(self, host=host, port=port, params=params, more_hosts=())

    def _render(self, secret: str) -> str:
        from urllib.parse import quote, urlencode

        user, database = quote(self.user, safe=""), quote(self.database, safe="")
        params = dict(self.params)
        if self.more_hosts:
            authority = ""
            params["host"] = ",".join(host for host, _ in self.hosts)
            params["port"] = ",".join(str(port) for _, port in self.hosts)
        else:
            authority = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        query = f"?{urlencode(sorted(params.items()), safe=',')}" if params else ""
        return f"{DRIVER}://{user}:{secret}@{authority}/{database}{query}"

    def connect_kwargs(self, timeout: int = 2) -> dict[str, Any]:
        """Keyword arguments for psycopg.connect: every parameter, and the harness's bound on waiting
        (libpq's `connect_timeout`, which holds for each host tried)."""
        given = self.params.get("connect_timeout", "")
        return {
            "application_name": "homer-ops",
            **self.params,
            "host": ",".join(host for host, _ in self.hosts) if self.more_hosts else self.host,
            "port": ",".join(str(port) for _, port in self.hosts) if self.more_hosts else self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.database,
            "connect_timeout": min(timeout, int(given)) if given.isdigit() and int(given) > 0 else timeout,
        }


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
