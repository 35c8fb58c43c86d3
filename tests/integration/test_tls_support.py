"""The real-TLS test support itself (tests/support: tls_pki, tls_relay, debian_postgres), with plain psycopg.

- `DirectTlsRelay` in front of the embedded PostgreSQL 18 (built without OpenSSL) speaks
  libpq's direct TLS (`sslnegotiation=direct`): verify-full works against the right CA and
  fails, with libpq's own message, against another CA or another host name.
- `DebianPostgres` (Debian's PostgreSQL, built with OpenSSL, no pgvector) accepts only
  hostssl on 127.0.0.1.

libpq 18 error texts seen here (str of psycopg.OperationalError, after the prefix
'connection failed: connection to server at "127.0.0.1", port N failed: '), same for both servers:
  wrong CA:           SSL error: certificate verify failed
  host-name mismatch: server certificate for "127.0.0.1" (and 1 other name) does not match host
                      name "localhost"   (the other name is the certificate's CN, also 127.0.0.1)
  missing rootcert:   root certificate file "<path>" does not exist\nEither provide the file, use the
                      system's trusted roots with sslrootcert=system, or change sslmode to disable
                      server certificate verification.
  sslmode=disable against hostssl-only:
                      FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "tls_app",
                      database "tls_db", no encryption
  direct TLS to a server without TLS, or a relay whose upstream is down:
                      SSL error: unexpected eof while reading
  sslnegotiation=postgres (an SSLRequest) to the relay:
                      server closed the connection unexpectedly\n\tThis probably means the server
                      terminated abnormally\n\tbefore or while processing the request.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ops.backends.embedded import EmbeddedBackend
from ops.endpoint import Endpoint
from ops.procs import free_port
from ops.tls import ssl_attribute
from tests.support.db import libpq_url
from tests.support.debian_postgres import DebianPostgres, debian_postgres_bin
from tests.support.tls_pki import Pki, make_pki
from tests.support.tls_relay import DirectTlsRelay

DIRECT_TLS_LIBPQ = 170000
SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"  # what a libpq with sslnegotiation=postgres sends first
TLS_VERSIONS = {"TLSv1.2", "TLSv1.3"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def upstream(pg_server: EmbeddedBackend) -> Endpoint:
    return pg_server.start().endpoint


@pytest.fixture
def relay(pki: Pki, upstream: Endpoint) -> Iterator[DirectTlsRelay]:
    if psycopg.pq.version() < DIRECT_TLS_LIBPQ:
        pytest.skip(f"libpq {psycopg.pq.version()} is older than 17: it cannot do sslnegotiation=direct")
    with DirectTlsRelay(upstream.host, upstream.port, pki.server_cert, pki.server_key) as running:
        yield running


@pytest.fixture(scope="module")
def debian_pg(pki: Pki) -> Iterator[DebianPostgres]:
    if debian_postgres_bin() is None:
        pytest.skip(
            "DEBIAN POSTGRESQL IS NOT INSTALLED (no /usr/lib/postgresql/*/bin/initdb): "
            "the TLS tests against a real OpenSSL PostgreSQL DID NOT RUN; apt-get install -y postgresql"
        )
    with DebianPostgres(pki) as server:
        yield server


def via_relay(endpoint: Endpoint, relay: DirectTlsRelay, rootcert: Path | str, **params: Any) -> str:
    """A verify-full, direct-TLS URL to the relay (extra libpq parameters override)."""
    options = {"sslmode": "verify-full", "sslnegotiation": "direct", "sslrootcert": rootcert, **params}
    host = options.pop("host", relay.host)
    return libpq_url(endpoint.user, endpoint.password, host, relay.port, endpoint.database, **options)


def to_debian(server: DebianPostgres, **params: Any) -> str:
    return libpq_url(server.user, server.password, server.host, server.port, server.database, **params)


# --- the relay -------------------------------------------------------------------------------


def test_direct_tls_verify_full_through_the_relay(
    pki: Pki, upstream: Endpoint, relay: DirectTlsRelay
) -> None:
    before = relay.accepted
    with psycopg.connect(via_relay(upstream, relay, pki.ca_cert), connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.pgconn.ssl_in_use
        protocol = ssl_attribute(conn, "protocol")
        assert protocol in TLS_VERSIONS
        assert ssl_attribute(conn, "alpn") == "postgresql"
        # The upstream itself saw plaintext: this TLS was the relay's.
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (False,)
    assert relay.accepted == before + 1
    assert relay.tls_versions[-1] == protocol


def test_relay_serves_many_concurrent_connections(
    pki: Pki, upstream: Endpoint, relay: DirectTlsRelay
) -> None:
    url = via_relay(upstream, relay, pki.ca_cert)
    results: list[Any] = []

    def client(n: int) -> None:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                results.append(conn.execute("SELECT %s::int FROM pg_sleep(0.2)", (n,)).fetchone())
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(results) == [(n,) for n in range(16)]
    assert relay.accepted == 16


def test_relay_exit_closes_open_connections_quickly(pki: Pki, upstream: Endpoint) -> None:
    with DirectTlsRelay(upstream.host, upstream.port, pki.server_cert, pki.server_key) as relay:
        conn = psycopg.connect(via_relay(upstream, relay, pki.ca_cert), connect_timeout=5, autocommit=True)
        idle = socket.create_connection((relay.host, relay.port), timeout=3)  # never says a word
        started = time.monotonic()
    elapsed = time.monotonic() - started
    try:
        assert elapsed < 2.0
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        assert idle.recv(1) == b""
        with pytest.raises(OSError):
            socket.create_connection((relay.host, relay.port), timeout=1).close()
    finally:
        conn.close()
        idle.close()


def test_relay_closes_a_connection_that_is_not_tls(relay: DirectTlsRelay) -> None:
    with socket.create_connection((relay.host, relay.port), timeout=3) as raw:
        raw.sendall(SSL_REQUEST)
        try:
            answer = raw.recv(1)
        except ConnectionResetError:
            answer = b""
    assert answer == b""
    assert relay.accepted == 0


def test_relay_with_its_upstream_down_fails_fast(pki: Pki) -> None:
    with DirectTlsRelay("127.0.0.1", free_port(), pki.server_cert, pki.server_key) as relay:
        url = libpq_url(
            "nobody", "x", relay.host, relay.port, "none",
            sslmode="verify-full", sslnegotiation="direct", sslrootcert=pki.ca_cert,
        )  # fmt: skip
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="unexpected eof"):
            psycopg.connect(url, connect_timeout=5)
        assert time.monotonic() - started < 2.0
        assert relay.accepted == 1


def test_relay_refuses_a_certificate_from_another_ca(
    pki: Pki, upstream: Endpoint, relay: DirectTlsRelay
) -> None:
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(via_relay(upstream, relay, pki.other_ca_cert), connect_timeout=5)


def test_relay_refuses_a_host_name_not_in_the_certificate(
    pki: Pki, upstream: Endpoint, relay: DirectTlsRelay
) -> None:
    url = via_relay(upstream, relay, pki.ca_cert, host="localhost", hostaddr="127.0.0.1")
    with pytest.raises(psycopg.OperationalError, match='does not match host name "localhost"'):
        psycopg.connect(url, connect_timeout=5)


def test_missing_root_certificate_file_is_named(
    pki: Pki, upstream: Endpoint, relay: DirectTlsRelay, tmp_path: Path
) -> None:
    missing = tmp_path / "absent-ca.crt"
    expected = re.escape(f'root certificate file "{missing}" does not exist')
    with pytest.raises(psycopg.OperationalError, match=expected):
        psycopg.connect(via_relay(upstream, relay, missing), connect_timeout=5)
    assert relay.accepted == 0  # libpq gave up before any handshake completed


# --- Debian's PostgreSQL with ssl=on ---------------------------------------------------------


def test_debian_postgres_rejects_plaintext(debian_pg: DebianPostgres) -> None:
    with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects connection .* no encryption"):
        psycopg.connect(to_debian(debian_pg, sslmode="disable"), connect_timeout=5)


def test_debian_postgres_verify_full(pki: Pki, debian_pg: DebianPostgres) -> None:
    url = to_debian(debian_pg, sslmode="verify-full", sslrootcert=pki.ca_cert)
    with psycopg.connect(url, connect_timeout=5) as conn:
        assert conn.pgconn.ssl_in_use
        ssl, version = conn.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert ssl is True
        assert version in TLS_VERSIONS
        assert ssl_attribute(conn, "protocol") == version


def test_debian_postgres_refuses_another_ca(pki: Pki, debian_pg: DebianPostgres) -> None:
    url = to_debian(debian_pg, sslmode="verify-full", sslrootcert=pki.other_ca_cert)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(url, connect_timeout=5)


def test_debian_postgres_has_no_pgvector(pki: Pki, debian_pg: DebianPostgres) -> None:
    url = to_debian(debian_pg, sslmode="verify-full", sslrootcert=pki.ca_cert)
    with psycopg.connect(url, connect_timeout=5) as conn:
        assert conn.execute("SELECT * FROM pg_available_extensions WHERE name = 'vector'").fetchall() == []
        assert conn.execute("SELECT count(*) FROM pg_available_extensions").fetchone()[0] > 0


# --- the DSN builder -------------------------------------------------------------------------


def test_libpq_url_quotes_every_part() -> None:
    url = libpq_url(
        "a b", "p@ss:/?#%&=", "127.0.0.1", 5433, "db/x", sslmode="verify-full", sslrootcert="/t/a b.crt"
    )
    assert conninfo_to_dict(url) == {
        "user": "a b",
        "password": "p@ss:/?#%&=",
        "host": "127.0.0.1",
        "port": "5433",
        "dbname": "db/x",
        "sslmode": "verify-full",
        "sslrootcert": "/t/a b.crt",
    }
