"""Debian's PostgreSQL with ssl=on, in a temp dir, for tests of a server that does TLS itself."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

from ops.backends.embedded import INITDB_ARGS
from ops.platform import allow_traverse, give_to, run_bounded, service_account
from ops.procs import free_port, pid_alive
from tests.support.tls_pki import Pki, write_private

START_TIMEOUT_S = 30


def debian_postgres_bin() -> Path | None:
    """The bin directory of the newest /usr/lib/postgresql/<major>, or None if none is installed."""
    found = []
    for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        bin_dir = initdb.parent
        if bin_dir.parent.name.isdigit() and all(
            os.access(bin_dir / n, os.X_OK) for n in ("pg_ctl", "postgres")
        ):
            found.append((int(bin_dir.parent.name), bin_dir))
    return max(found)[1] if found else None


class DebianPostgres:
    """Debian's PostgreSQL in a temp dir: TLS with the Pki's server certificate, hostssl-only on 127.0.0.1.

    As root it runs as the unprivileged service user. `.host`, `.port`, `.user`, `.password` and
    `.database` name a login role owning its database; the superuser is reachable on the
    private Unix socket in `.socket_dir` only.
    """

    def __init__(self, pki: Pki, user: str = "tls_app", database: str = "tls_db") -> None:
        bin_dir = debian_postgres_bin()
        if bin_dir is None:
            raise RuntimeError("Debian's PostgreSQL is not installed (apt-get install postgresql)")
        self.bin_dir = bin_dir
        self.pki = pki
        self.host = "127.0.0.1"
        self.port = 0
        self.user = user
        self.password = secrets.token_urlsafe(18)
        self.database = database
        self.root: Path | None = None
        self._started = False

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root / "run"

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "postgres.log"

    def __enter__(self) -> DebianPostgres:
        try:
            self._setup()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._teardown()

    def _setup(self) -> None:
        cert, key = self._prepare_files()
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                *INITDB_ARGS,  # the embedded backend's own options
            ],
            timeout=120,
        )
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 reject\n"
        )
        self._start(cert, key)
        self._provision()

    def _prepare_files(self) -> tuple[Path, Path]:
        """The temp dir, its data and socket dirs, a private copy of the certificate and key; theirs
        to the service user. The (certificate, key) copies."""
        runner = service_account()
        self.root = Path(tempfile.mkdtemp(prefix="homer-debpg-"))  # short: the socket path is limited
        self.data_dir.mkdir(mode=0o700)
        self.socket_dir.mkdir(mode=0o700)
        cert, key = self.root / "server.crt", self.root / "server.key"
        shutil.copyfile(self.pki.server_cert, cert)
        write_private(key, self.pki.server_key.read_bytes())
        self.log_path.touch()
        if runner is not None:
            give_to(runner, self.root, self.data_dir, self.socket_dir, cert, key, self.log_path)
            allow_traverse(self.root)
        return cert, key

    def _start(self, cert: Path, key: Path) -> None:
        """`pg_ctl start` on a free port, another one if that was taken meanwhile; RuntimeError if not."""
        last_error = ""
        for _ in range(5):  # a free port can be taken between choosing and binding it
            self.port = free_port(self.host)
            self._write_conf(cert, key)
            result = self._run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "start",
                ],
                timeout=START_TIMEOUT_S + 5,
                check=False,
            )
            if result.returncode == 0:
                self._started = True
                break
            last_error = self.log_path.read_text(errors="replace")[-3000:] + result.stderr
            if "could not bind" not in last_error and "already in use" not in last_error:
                break
        if not self._started:
            raise RuntimeError(f"Debian PostgreSQL did not start:\n{last_error}")

    def _provision(self) -> None:
        """The login role and the database it owns, made by the superuser on the private socket."""
        with psycopg.connect(
            host=str(self.socket_dir), port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(self.user), sql.Literal(self.password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.database), sql.Identifier(self.user)
                )
            )

    def _write_conf(self, cert: Path, key: Path) -> None:
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "ssl": "on",
            "ssl_cert_file": str(cert),
            "ssl_key_file": str(key),
            "ssl_min_protocol_version": "TLSv1.2",
            "password_encryption": "scram-sha-256",
            "fsync": "off",
            "shared_buffers": "16MB",
            "max_connections": "40",
        }
        lines = [f"{name} = '{value}'" for name, value in settings.items()]
        (self.data_dir / "postgresql.auto.conf").write_text("\n".join(lines) + "\n")

    def _teardown(self) -> None:
        if self.root is None:
            return
        if self._started or (self.data_dir / "postmaster.pid").exists():
            pg_ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "10"]
            try:
                stopped = self._run([*pg_ctl, "stop", "-m", "immediate"], timeout=15, check=False)
                ok = stopped.returncode == 0
            except subprocess.TimeoutExpired:
                ok = False
            if not ok:
                self._kill_postmaster()
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def _kill_postmaster(self) -> None:
        """SIGQUIT (immediate shutdown) to the postmaster named in postmaster.pid, if pg_ctl could not."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)
            for _ in range(50):
                if not pid_alive(pid):
                    return
                time.sleep(0.1)

    def _run(self, argv: list[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
        runner = service_account()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
        if runner is not None:
            env["HOME"] = "/"
        result = run_bounded(argv, runner, timeout, env)
        if check and result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr[-3000:]}")
        return result
