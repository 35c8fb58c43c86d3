"""The whole stack over real TLS, `--backend external`, as a user types it.

- A direct-TLS relay (ALPN `postgresql`, libpq 18's `sslnegotiation=direct`) with a test CA's
  certificate for 127.0.0.1 stands in front of an embedded PostgreSQL 18 (built without OpenSSL).
- Debian's PostgreSQL 15, `ssl=on` and hostssl-only, for the ordinary negotiation; it lacks pgvector.

Every libpq parameter of DATABASE_URL must reach every connection (migrations, the seed, the
API's pool, status, diagnose), a certificate problem must fail at once with exit 4 naming it,
and nothing may fall back to a weaker mode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from ops.backends.embedded import EmbeddedBackend
from ops.endpoint import Endpoint
from ops.settings import build_settings
from tests.support.db import libpq_url
from tests.support.debian_postgres import DebianPostgres, debian_postgres_bin
from tests.support.output import one_line_error, step_lines
from tests.support.paths import PROJECT_DIR
from tests.support.project import Project, read_state
from tests.support.tls_pki import Pki, make_pki
from tests.support.tls_relay import DirectTlsRelay

pytestmark = pytest.mark.e2e
TLS_VERSIONS = {"TLSv1.2", "TLSv1.3"}
APP_NAME = "homer-tls-e2e"  # set in DATABASE_URL: seen in pg_stat_activity only if it reached the pool


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """A plaintext embedded PostgreSQL 18 with the app's role, database and extensions."""
    settings = build_settings(
        PROJECT_DIR, flags={"state_dir": str(tmp_path_factory.mktemp("tlspg")), "backend": "embedded"}
    )
    backend = EmbeddedBackend(settings)
    yield backend.start().endpoint
    backend.stop()


@pytest.fixture
def relay(server: Endpoint, pki: Pki) -> Iterator[DirectTlsRelay]:
    with DirectTlsRelay(server.host, server.port, pki.server_cert, pki.server_key) as running:
        yield running


def tls_url(server: Endpoint, port: int, host: str = "127.0.0.1", **params: object) -> str:
    return libpq_url(server.user, server.password, host, port, server.database, **params)


def error_line(stderr: str) -> str:
    """The one `error: ...` line a failed command ends with (and no traceback of the harness)."""
    assert one_line_error(stderr), stderr
    return stderr.strip().splitlines()[-1]


def external(project: Project, url: str, seed: bool = False) -> Project:
    project.env.update(OPS_BACKEND="external", DATABASE_URL=url, OPS_SEED=str(seed).lower())
    return project


def test_the_whole_stack_works_over_verified_direct_tls(project, server, relay, pki):
    url = tls_url(
        server,
        relay.port,
        sslmode="verify-full",
        sslrootcert=pki.ca_cert,
        sslnegotiation="direct",
        application_name=APP_NAME,
    )
    external(project, url, seed=True)
    up = project.invoke("up")
    assert up.returncode == 0, up.stdout + up.stderr
    steps = step_lines(up.stdout)
    assert steps["db-ready"] == steps["api-start"] == steps["api-health"] == "OK"
    assert "sslmode=verify-full" in up.stdout  # the db step says what was asked for
    api_url = read_state(project)["api"]["url"]
    hits = httpx.get(f"{api_url}/search", params={"q": "μηνιν αειδε", "limit": 1}, trust_env=False).json()
    assert hits["hits"][0]["ref"] == "1.1"  # seeded over TLS, served over TLS

    diagnosis = project.invoke("diagnose", "--json")
    report = json.loads(diagnosis.stdout)
    assert diagnosis.returncode == 0, report["problems"]
    assert report["db"]["tls"]["in_use"] is True and report["db"]["tls"]["protocol"] in TLS_VERSIONS
    assert "encrypted (TLSv1." in project.invoke("diagnose").stdout

    for revision in ("-1", "head"):
        moved = project.invoke("migrate", "-r", revision)
        assert moved.returncode == 0, moved.stderr
    assert project.invoke("status").returncode == 0

    # The API's own pool connected with the URL's parameters (its application_name), via the relay.
    with psycopg.connect(**server.connect_kwargs()) as conn:
        names = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,)
        ).fetchone()
    assert names is not None and names[0] >= 1
    assert relay.accepted >= 5 and set(relay.tls_versions) <= TLS_VERSIONS
    for output in (up.stdout, up.stderr, diagnosis.stdout):
        assert server.password not in output


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("wrong CA", "SSL error: certificate verify failed"),
        ("host not in the certificate", 'does not match host name "localhost"'),
    ],
)
def test_a_certificate_problem_fails_at_once_with_exit_4_naming_it(
    project, server, relay, pki, case, message
):
    root = pki.other_ca_cert if case == "wrong CA" else pki.ca_cert
    host = "localhost" if case != "wrong CA" else "127.0.0.1"
    url = tls_url(server, relay.port, host, sslmode="verify-full", sslrootcert=root, sslnegotiation="direct")
    up = external(project, url).invoke("up")
    assert up.returncode == 4, up.stdout + up.stderr
    error = error_line(up.stderr)
    assert message in error and "never retried or weakened" in error
    ready = next(step for step in read_state(project)["steps"] if step["name"] == "db-ready")
    assert ready["status"] == "FAIL" and ready["attempts"] == 1  # not retried
    assert step_lines(up.stdout).get("api-health") in (None, "SKIP")  # the API's branch ended too
    assert read_state(project)["api"]["pid"] is None  # and what it started was stopped


def test_bad_tls_input_is_exit_2_in_one_line(project, server, relay, tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    cases = {
        tls_url(
            server, relay.port, sslmode="verify-full", sslrootcert=missing
        ): f"sslrootcert file {missing}",
        tls_url(
            server, relay.port, sslmode="verify-full", sslrootcrt="x"
        ): "unknown libpq parameter 'sslrootcrt'",
        tls_url(server, relay.port, sslmode="verify-fulll"): "sslmode='verify-fulll' is not valid",
    }
    for url, message in cases.items():
        up = external(project, url).invoke("up")
        assert up.returncode == 2, up.stdout + up.stderr
        assert message in error_line(up.stderr)
        assert server.password not in up.stderr


@pytest.fixture(scope="module")
def debian_pg(pki: Pki) -> Iterator[DebianPostgres]:
    if debian_postgres_bin() is None:
        pytest.skip(
            "NO DEBIAN POSTGRESQL (apt-get install postgresql): the ordinary-negotiation TLS test did not run"
        )
    with DebianPostgres(pki) as running:
        yield running


def test_ordinary_tls_to_a_server_without_pgvector_says_so_in_one_line(project, debian_pg, pki):
    url = libpq_url(
        debian_pg.user,
        debian_pg.password,
        debian_pg.host,
        debian_pg.port,
        debian_pg.database,
        sslmode="verify-full",
        sslrootcert=pki.ca_cert,
    )
    up = external(project, url).invoke("up")
    assert up.returncode == 4, up.stdout + up.stderr
    assert "lacks the extension(s) vector" in error_line(up.stderr)
    report = json.loads(project.invoke("diagnose", "--json").stdout)
    assert report["db"]["reachable"] and report["db"]["tls"]["in_use"] is True
    assert report["db"]["tls"]["protocol"] in TLS_VERSIONS


def test_plaintext_is_refused_by_a_hostssl_server_and_never_upgraded_or_downgraded(project, debian_pg):
    url = libpq_url(
        debian_pg.user,
        debian_pg.password,
        debian_pg.host,
        debian_pg.port,
        debian_pg.database,
        sslmode="disable",
    )
    up = external(project, url).invoke("up")
    assert up.returncode == 4 and "no encryption" in error_line(up.stderr)
