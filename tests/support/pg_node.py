"""One PostgreSQL server of the replication support (`tests.support.replication`): its name,
address and files, its configuration, its readiness and what its failure says."""

from __future__ import annotations

import contextlib
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ops.platform import Account, give_to
from ops.procs import tail

HOST = "127.0.0.1"
REPLICATION_USER = "replicator"
START_TIMEOUT_S = 30.0  # a postmaster's start, a base backup, streaming to begin, a promotion
STOP_TIMEOUT_S = 10.0
BIND_RETRIES = 5
LOG_TAIL_LINES = 30
POLL_S = 0.01
SERVER_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "hot_standby": "on",
    "wal_keep_size": "64MB",
    "fsync": "off",  # test data: a crash of the machine may lose it
    "shared_buffers": "16MB",
    "max_connections": "40",
}
PG_HBA = f"""\
local all all trust
host replication {REPLICATION_USER} {HOST}/32 scram-sha-256
host all all {HOST}/32 scram-sha-256
"""


class ReplicationError(RuntimeError):
    """A node did not start, stream, replay or promote in time (the message ends with its log's tail)."""


@dataclass(frozen=True)
class Node:
    """One server: its name (`primary`, `standby1`, ...: where it started, not its role now)."""

    name: str
    host: str
    port: int
    data_dir: Path
    log_path: Path

    @property
    def pid(self) -> int | None:
        """The postmaster's pid from postmaster.pid, or None once it is stopped."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        except OSError:
            return None
        return int(first) if first.isdigit() else None


def configure(primary: Node, runner: Account | None) -> None:
    """Replication settings in postgresql.auto.conf and the access rules in pg_hba.conf."""
    lines = [f"{name} = '{value}'" for name, value in SERVER_SETTINGS.items()]
    write_owned(primary.data_dir / "postgresql.auto.conf", "\n".join(lines) + "\n", runner)
    write_owned(primary.data_dir / "pg_hba.conf", PG_HBA, runner)


def write_owned(path: Path, text: str, runner: Account | None) -> None:
    """Write `path` with mode 0600, owned by `runner`."""
    path.write_text(text)
    path.chmod(0o600)
    give_to(runner, path)


def postmaster_ready(node: Node, postmaster: subprocess.Popen[bytes], timeout: float) -> bool:
    """True once postmaster.pid names `postmaster` and says "ready" (a hot standby: consistent)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and postmaster.poll() is None:
        with contextlib.suppress(OSError):
            lines = (node.data_dir / "postmaster.pid").read_text().splitlines()
            if len(lines) > 7 and lines[0].strip() == str(postmaster.pid) and lines[7].strip() == "ready":
                return True
        time.sleep(POLL_S)
    return False


def failure(node: Node, what: str) -> str:
    """`what` went wrong on `node`, followed by its log's tail."""
    return f"{node.name} on {node.host}:{node.port}: {what}\n--- {node.log_path} ---\n" + tail(
        node.log_path, LOG_TAIL_LINES
    )
