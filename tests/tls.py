"""Real-TLS test support: a throwaway PKI, a direct-TLS relay, Debian's PostgreSQL with ssl=on.

The embedded PostgreSQL 18 is built without OpenSSL, so TLS to it goes through
`DirectTlsRelay` (what libpq >= 17 speaks with `sslnegotiation=direct`). A server that
does TLS itself, including the classic SSLRequest negotiation, is `DebianPostgres`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from psycopg import sql

from ops.backends.embedded import INITDB_ARGS
from ops.platform import allow_traverse, give_to, run_as, service_account
from ops.procs import free_port, pid_alive

ALPN = "postgresql"
START_TIMEOUT_S = 30


# --- PKI -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """PEM files: the CA, a server certificate it signed (with its key), and an unrelated CA."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    other_ca_cert: Path


def make_pki(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1",)) -> Pki:
    """Write a CA, a server certificate for `hosts` (IPs as IP SANs, others as DNS SANs) and a second CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _make_ca("homer-ops test CA")
    _, other_cert = _make_ca("homer-ops unrelated CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        other_ca_cert=directory / "other-ca.crt",
    )
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.other_ca_cert.write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(pki.server_key, _key_pem(server_key))
    for public in (pki.ca_cert, pki.other_ca_cert, pki.server_cert):
        public.chmod(0o644)
    return pki


def _make_ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` with mode 0600 from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


# --- DSN and connection introspection --------------------------------------------------------


def libpq_url(user: str, password: str, host: str, port: int, database: str, **params: Any) -> str:
    """`postgresql://user:pw@host:port/db?k=v&...`, every part URL-quoted (None values dropped)."""
    netloc_host = f"[{host}]" if ":" in host else host
    url = f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{netloc_host}:{int(port)}"
    url += f"/{quote(database, safe='')}"
    query = {key: str(value) for key, value in params.items() if value is not None}
    return f"{url}?{urlencode(query, quote_via=quote)}" if query else url


# --- direct-TLS relay ------------------------------------------------------------------------


class DirectTlsRelay:
    """TLS (ALPN `postgresql`, TLS >= 1.2) on 127.0.0.1:`.port`, relayed in plaintext to an upstream.

    Runs an asyncio loop in a background thread. `.accepted` counts TLS sessions established
    and `.tls_versions` their protocol versions; a connection that does not complete a TLS
    handshake within `handshake_timeout` is closed. Exit closes every connection at once.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        cert: Path,
        key: Path,
        handshake_timeout: float = 5.0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = "127.0.0.1"
        self.port = 0
        self.accepted = 0
        self.tls_versions: list[str] = []
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._context.set_alpn_protocols([ALPN])
        self._context.load_cert_chain(cert, key)
        self._handshake_timeout = handshake_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._clients: set[socket.socket] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> DirectTlsRelay:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((self.host, 0))
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(lambda _loop, _context: None)  # failed handshakes are expected
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="direct-tls-relay", daemon=True)
        self._thread.start()
        loop.call_soon_threadsafe(loop.add_reader, listener.fileno(), self._accept)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._close_all(), loop).result(timeout=3)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=3)
            if not thread.is_alive():
                loop.close()
        for client in self._clients:  # any the loop had no time to close
            client.close()
        self._clients.clear()
        if self._listener is not None:
            self._listener.close()
        self._loop = self._thread = self._listener = None

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _accept(self) -> None:
        """Accept what is pending (in a reader callback, so no accepted socket can be lost)."""
        assert self._listener is not None
        for _ in range(64):
            try:
                client, _ = self._listener.accept()
            except OSError:  # nothing pending (BlockingIOError), or e.g. EMFILE: retried when readable
                return
            client.setblocking(False)
            self._clients.add(client)
            self._spawn(self._relay(client))

    async def _relay(self, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        client_reader = asyncio.StreamReader()
        client_protocol = asyncio.StreamReaderProtocol(client_reader)
        transports: list[asyncio.WriteTransport] = []
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: client_protocol,
                client,
                ssl=self._context,
                ssl_handshake_timeout=self._handshake_timeout,
                ssl_shutdown_timeout=1.0,
            )
            transports.append(transport)
            self._transports.add(transport)
            client_writer = asyncio.StreamWriter(transport, client_protocol, client_reader, loop)
            self.accepted += 1
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                self.tls_versions.append(str(ssl_object.version()))
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), timeout=5
            )
            transports.append(upstream_writer.transport)
            self._transports.add(upstream_writer.transport)
            pumps = [
                asyncio.create_task(_pump(client_reader, upstream_writer)),
                asyncio.create_task(_pump(upstream_reader, client_writer)),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except (OSError, TimeoutError):
            pass  # not TLS, a failed handshake, or the upstream is down: just close
        finally:
            if not transports:
                client.close()
            self._clients.discard(client)
            for opened in transports:
                self._transports.discard(opened)
                opened.abort()

    async def _close_all(self) -> None:
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
        for transport in list(self._transports):
            transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _ in range(3):  # let the aborted transports' connection_lost callbacks close their sockets
            await asyncio.sleep(0)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy `reader` to `writer` until EOF or an error."""
    with contextlib.suppress(OSError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


# --- Debian's PostgreSQL with ssl=on ---------------------------------------------------------


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
        runner = service_account()
        self.root = Path(tempfile.mkdtemp(prefix="homer-debpg-"))  # short: the socket path is limited
        self.data_dir.mkdir(mode=0o700)
        self.socket_dir.mkdir(mode=0o700)
        cert, key = self.root / "server.crt", self.root / "server.key"
        shutil.copyfile(self.pki.server_cert, cert)
        _write_private(key, self.pki.server_key.read_bytes())
        self.log_path.touch()
        if runner is not None:
            give_to(runner, self.root, self.data_dir, self.socket_dir, cert, key, self.log_path)
            allow_traverse(self.root)
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
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            env=env,
            check=False,
            **run_as(runner),
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr[-3000:]}")
        return result
