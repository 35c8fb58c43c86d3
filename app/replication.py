"""Which server a connection reached and how far a standby lags, as /health and `invoke diagnose` say.

One query: `pg_is_in_recovery()`, and for a standby the seconds since the last replayed
transaction, or 0 when it has replayed all it received (an idle primary sends nothing to replay,
so a timestamp alone would show a growing lag that is not there), and whether its WAL receiver
runs (it does not once the standby has lost its primary; its pid is what any role may see).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LAG_DEGRADED_S = 30.0  # a standby further behind than this makes /health say "degraded" (still 200)

ROLE_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0.0
            ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0.0)::float8
       END,
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE pid IS NOT NULL)
"""


def address(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class ServerRole:
    """The server one connection reached."""

    host: str
    port: int
    standby: bool
    lag_s: float | None  # a standby's replication lag; None on a primary
    receiving: bool | None = None  # a standby's WAL receiver runs; None on a primary

    @property
    def role(self) -> str:
        return "standby" if self.standby else "primary"

    @property
    def address(self) -> str:
        return address(self.host, self.port)

    def describe(self) -> str:
        """`127.0.0.1:5433 primary`, or `... standby, lag 0.2 s, receiving`."""
        if not self.standby:
            return f"{self.address} primary"
        return f"{self.address} standby, {standby_state(self.lag_s, self.receiving)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.address,
            "role": self.role,
            "lag_s": None if self.lag_s is None else round(self.lag_s, 3),
            "receiving": self.receiving,
        }


def role_of(row: Any, info: Any) -> ServerRole:
    """The role from ROLE_SQL's row and the psycopg connection's `info` (its host and port)."""
    standby, lag, receiving = row
    lag_s = None if lag is None else float(lag)
    return ServerRole(info.host, int(info.port), bool(standby), lag_s, bool(receiving) if standby else None)


def standby_state(lag_s: float | None, receiving: bool | None) -> str:
    """`lag 0.2 s, receiving`, or `..., not receiving (its primary is gone?)`."""
    lag = "lag unknown" if lag_s is None else f"lag {lag_s:.1f} s"
    return f"{lag}, {'receiving' if receiving else 'not receiving (its primary is gone?)'}"
