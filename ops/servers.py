"""The servers behind an endpoint: which one a connection reaches, each host's role, and why none did.

A multi-host DSN (libpq's `h1:5432,h2:5433` with `target_session_attrs`) lets libpq choose the
server; these say which it chose (`reach`), what every host is on its own (`each_host`: primary,
standby with its lag, or its error), and turn psycopg's "Multiple connection attempts failed"
report into one line naming each host's error (`failures`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.replication import ROLE_SQL, ServerRole, address, role_of
from ops.endpoint import Endpoint
from ops.secrets import redact

_ATTEMPT = re.compile(r"^- host: '(?P<host>[^']*)', port: '(?P<port>[^']*)', hostaddr: [^:]*: (?P<error>.*)$")
_NOISE = re.compile(r"^(connection failed: )?(connection to server at \"[^\"]*\"(, port \d+)? failed: )?")


@dataclass(frozen=True)
class HostProbe:
    """One host of an endpoint, connected to alone: its role, or why it did not answer."""

    host: str
    port: int
    server: ServerRole | None
    error: str | None = None

    def describe(self) -> str:
        if self.server is not None:
            return self.server.describe()
        return f"{address(self.host, self.port)} unreachable: {self.error}"

    def as_dict(self) -> dict[str, Any]:
        facts = self.server.as_dict() if self.server else {"server": address(self.host, self.port)}
        return {**facts, "error": self.error}


def reach(endpoint: Endpoint, timeout: int = 2) -> ServerRole:
    """Connect as `endpoint` says (libpq picks the host) and say which server that was."""
    import psycopg

    with psycopg.connect(**endpoint.connect_kwargs(timeout)) as conn:
        return role_of(conn.execute(ROLE_SQL).fetchone(), conn.info)


def each_host(endpoint: Endpoint, timeout: int = 2) -> list[HostProbe]:
    """Every host of the endpoint on its own, whatever its role."""
    import psycopg

    probes = []
    for host, port in endpoint.hosts:
        try:
            probes.append(HostProbe(host, port, reach(endpoint.only(host, port), timeout)))
        except psycopg.Error as exc:
            probes.append(HostProbe(host, port, None, redact(_core(str(exc)), [endpoint.password])))
    return probes


def failures(exc: BaseException) -> str:
    """psycopg's error in one line; for several attempts, `host:port: error` for each, `; `-joined."""
    text = str(exc).strip()
    attempts = [match for line in text.splitlines() if (match := _ATTEMPT.match(line))]
    if not attempts:
        return _core(text) if text else type(exc).__name__
    return "; ".join(f"{m['host']}:{m['port']}: {_core(m['error'])}" for m in attempts)


def _core(message: str) -> str:
    """The reason without libpq's preamble (`connection to server at ... failed:`) or its hint lines."""
    first = message.strip().splitlines()[0] if message.strip() else message
    return _NOISE.sub("", first).strip() or first.strip()
