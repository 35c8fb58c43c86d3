"""Where and how to reach one PostgreSQL (or several hosts of one DSN): the bottom of the
database layer, below the backends that start servers and the checks that reach them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.driver import DRIVER
from ops.secrets import MASK


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
