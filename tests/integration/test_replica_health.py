"""/health on a real streaming standby: its role and lag, and "degraded" (still 200) past the bound."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.migrate import migrate
from tests.support.app import client_for
from tests.support.paths import PROJECT_DIR
from tests.support.replication import ReplicatedPostgres

BOUND_S = 0.3


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedPostgres]:
    with ReplicatedPostgres(Path(tmp_path_factory.mktemp("replica-health"))) as pair:
        migrate(PROJECT_DIR, pair.url([pair.primary]))
        pair.wait_replayed()
        yield pair


def test_a_standby_that_keeps_up_is_ok_and_says_so(replicated):
    standby = replicated.standbys[0]
    with client_for(replicated.url([standby]), REPLICA_LAG_DEGRADED_S=str(BOUND_S)) as client:
        response = client.get("/health")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok", body
    assert (body["role"], body["server"], body["receiving"]) == ("standby", f"127.0.0.1:{standby.port}", True)
    # 0.0 when it has replayed all it received; a WAL record (the primary's standby snapshot, every
    # 15 s) that arrives just then makes it the time since the last replayed commit, for a moment
    assert 0.0 <= body["lag_s"] < BOUND_S, body


def test_a_standby_past_the_lag_bound_is_degraded_but_still_200(replicated):
    primary, standby = replicated.primary, replicated.standbys[0]
    with replicated.connect(standby, superuser=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        with replicated.connect(primary) as conn:
            conn.execute("CREATE TEMP TABLE t (x int)")  # WAL to receive that is not replayed
            conn.execute("SELECT txid_current()")
        time.sleep(BOUND_S * 2)
        with client_for(replicated.url([standby]), REPLICA_LAG_DEGRADED_S=str(BOUND_S)) as client:
            response = client.get("/health")
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "degraded" and body["lag_s"] > BOUND_S, body
        assert body["reason"].startswith("replica lag ") and f"over {BOUND_S:g} s" in body["reason"]
    finally:
        with replicated.connect(standby, superuser=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")


def test_the_primary_reports_itself_without_a_lag(replicated):
    with client_for(replicated.url([replicated.primary])) as client:
        body = client.get("/health").json()
    assert (body["status"], body["role"], body["lag_s"], body["receiving"]) == ("ok", "primary", None, None)
