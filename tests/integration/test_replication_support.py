"""The replication test support itself (tests/support/replication.py): a real primary and streaming standby.

One primary with two standbys serves the module; the failover test and the failed-start test make their own.

psycopg 3.3 splits a multi-host conninfo itself and tries each host in turn (a single-host
attempt each, its IP copied into `hostaddr`), so libpq checks `target_session_attrs` per host.
When every attempt fails, the OperationalError (sqlstate None) starts with the *last* host's
error, then lists all of them:

  connection failed: connection to server at "127.0.0.1", port P2 failed: session is read-only
  Multiple connection attempts failed. All failures were:
  - host: '127.0.0.1', port: 'P1', hostaddr: '127.0.0.1': connection failed: connection to server
    at "127.0.0.1", port P1 failed: session is read-only
  - host: '127.0.0.1', port: 'P2', hostaddr: '127.0.0.1': connection failed: ... session is read-only

and with every host down each entry reads `... port P failed: Connection refused` followed by
`\\n\\tIs the server running on that host and accepting TCP/IP connections?`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ops.migrate import head_revision, migrate
from ops.procs import free_port, pid_alive
from tests.support.paths import PROJECT_DIR
from tests.support.pg_node import HOST, Node, ReplicationError
from tests.support.replication import ReplicatedPostgres

READ_WRITE = "read-write"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedPostgres]:
    with ReplicatedPostgres(tmp_path_factory.mktemp("repl"), standbys=2) as running:
        yield running


def server(conn: psycopg.Connection) -> tuple[int, bool]:
    """The port the connection reached and whether that server is in recovery."""
    row = conn.execute("SELECT inet_server_port(), pg_is_in_recovery()").fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_row_written_on_the_primary_appears_on_the_standby(pair: ReplicatedPostgres) -> None:
    assert pair.primary is not None
    with pair.connect(pair.primary) as conn:
        conn.execute("CREATE TABLE replicated_rows (line text)")
        conn.execute("INSERT INTO replicated_rows VALUES ('μῆνιν ἄειδε θεὰ')")
    pair.wait_replayed()
    for standby in pair.standbys:
        with pair.connect(standby) as conn:
            assert conn.execute("SELECT line FROM replicated_rows").fetchall() == [("μῆνιν ἄειδε θεὰ",)]


def test_the_standbys_stream_are_in_recovery_and_refuse_writes(pair: ReplicatedPostgres) -> None:
    assert pair.primary is not None
    with pair.connect(pair.primary, superuser=True) as conn:
        rows = conn.execute(
            "SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY 1"
        ).fetchall()
    assert rows == [(standby.name, "streaming", "async") for standby in pair.standbys]
    for standby in pair.standbys:
        with pair.connect(standby) as conn:
            assert server(conn) == (standby.port, True)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only transaction"):
                conn.execute("CREATE TABLE refused (id int)")


def test_wait_replayed_is_bounded_and_shows_the_standby_log(pair: ReplicatedPostgres) -> None:
    assert pair.primary is not None
    paused = pair.standbys[-1]
    with pair.connect(paused, superuser=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            with pair.connect(pair.primary) as conn:
                conn.execute("CREATE TABLE while_paused (id int)")
            began = time.monotonic()
            with pytest.raises(ReplicationError) as caught:
                pair.wait_replayed(timeout=0.3)
            assert time.monotonic() - began < 3
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
    message = str(caught.value)
    assert message.startswith(f"{paused.name} on {HOST}:{paused.port}: did not replay up to ")
    assert f"--- {paused.log_path} ---" in message and "started streaming WAL" in message
    pair.wait_replayed()


def test_read_write_reaches_the_primary_whatever_the_host_order(pair: ReplicatedPostgres) -> None:
    assert pair.primary is not None
    url = pair.libpq_url([*pair.standbys, pair.primary], target_session_attrs=READ_WRITE)
    with psycopg.connect(url, connect_timeout=3) as conn:
        assert server(conn) == (pair.primary.port, False)


def test_read_write_with_only_standbys_names_every_one(pair: ReplicatedPostgres) -> None:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(pair.libpq_url(pair.standbys, target_session_attrs=READ_WRITE), connect_timeout=3)
    message = str(caught.value)
    assert caught.value.sqlstate is None
    last = f'connection to server at "{HOST}", port {pair.standbys[-1].port} failed'
    assert message.splitlines()[0] == f"connection failed: {last}: session is read-only"
    assert message.splitlines()[1] == "Multiple connection attempts failed. All failures were:"
    for standby in pair.standbys:
        where = f'connection to server at "{HOST}", port {standby.port} failed'
        attempt = f"- host: '{HOST}', port: '{standby.port}', hostaddr: '{HOST}'"
        assert f"{attempt}: connection failed: {where}: session is read-only" in message.splitlines()


def test_every_host_down_lists_every_refusal(tmp_path: Path) -> None:
    down = [Node(f"down{i}", HOST, free_port(HOST), tmp_path, tmp_path / "none.log") for i in (1, 2)]
    spare = ReplicatedPostgres(tmp_path)  # never entered: only its URL is used
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(spare.libpq_url(down, target_session_attrs=READ_WRITE), connect_timeout=3)
    lines = str(caught.value).splitlines()
    assert lines[0] == (
        f'connection failed: connection to server at "{HOST}", port {down[1].port} failed: Connection refused'
    )
    assert lines[1] == "\tIs the server running on that host and accepting TCP/IP connections?"
    for node in down:
        assert f"- host: '{HOST}', port: '{node.port}', hostaddr: '{HOST}': connection failed:" in str(
            caught.value
        )


def test_migrations_run_on_the_primary_and_replicate(pair: ReplicatedPostgres) -> None:
    assert pair.primary is not None
    result = migrate(PROJECT_DIR, pair.url([*pair.standbys, pair.primary], target_session_attrs=READ_WRITE))
    assert result.after == head_revision(PROJECT_DIR)
    pair.wait_replayed()
    for standby in pair.standbys:
        with pair.connect(standby) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(result.after,)]
            extensions = conn.execute("SELECT extname FROM pg_extension").fetchall()
        assert {"pg_trgm", "vector"} <= {name for (name,) in extensions}


def test_failover_promotes_the_standby_and_read_write_follows(tmp_path: Path) -> None:
    with ReplicatedPostgres(tmp_path) as failover:
        old, standby = failover.primary, failover.standbys[0]
        assert old is not None
        url = failover.libpq_url(target_session_attrs=READ_WRITE)  # primary first, then the standby
        with psycopg.connect(url, connect_timeout=3) as conn:
            assert server(conn) == (old.port, False)
            conn.execute("CREATE TABLE before_failover (id int)")
            conn.execute("INSERT INTO before_failover VALUES (1)")
            conn.commit()
        failover.wait_replayed()
        pids = [old.pid, standby.pid]

        failover.kill(old)
        assert old.pid is None and not pid_alive(pids[0])
        failover.promote(standby)

        assert failover.primary == standby and failover.standbys == []
        with psycopg.connect(url, connect_timeout=3) as conn:
            assert server(conn) == (standby.port, False)
            conn.execute("INSERT INTO before_failover VALUES (2)")
            assert conn.execute("SELECT id FROM before_failover ORDER BY id").fetchall() == [(1,), (2,)]
    assert not any(pid_alive(pid) for pid in pids)
    assert not old.data_dir.exists() and not standby.data_dir.exists()  # a clean exit removes them
    assert old.log_path.stat().st_size > 0 and standby.log_path.stat().st_size > 0  # logs are kept


class _FailsAfterFirstStandby(ReplicatedPostgres):
    """Starts the primary and a standby, then fails, as a broken clone would."""

    started_pids: list[int | None]

    def _clone(self, primary: Node, name: str) -> Node:
        super()._clone(primary, name)
        self.started_pids = [started.pid for started in self.nodes]
        raise RuntimeError("clone failed")


def test_a_failure_while_starting_leaves_nothing_running(tmp_path: Path) -> None:
    attempt = _FailsAfterFirstStandby(tmp_path, standbys=2)
    with pytest.raises(RuntimeError, match="clone failed"):
        attempt.__enter__()
    assert len(attempt.started_pids) == 2 and all(attempt.started_pids)
    assert not any(pid_alive(pid) for pid in attempt.started_pids)
    assert (tmp_path / "primary" / "PG_VERSION").exists()  # kept for a post-mortem after a failure
    assert "ready to accept" in (tmp_path / "primary.log").read_text()
