"""Bounded load on /search (8 clients, loopback only) with PostgreSQL restarted in the middle."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from ops import stack
from ops.backends.embedded import EmbeddedBackend
from ops.state import load_state
from tests.support.stacks import stack_settings

pytestmark = pytest.mark.e2e

CLIENTS = 8
MAX_REQUESTS = 3000  # bounded in count ...
MAX_SECONDS = 30  # ... and in time
QUERIES = ("μηνιν αειδε", "Ἀχιλῆος", "αγαμεμνων", "ἄνδρα", "θεα")


def test_search_under_load_gives_only_503_while_postgres_restarts_then_recovers(tmp_path):
    settings = stack_settings(tmp_path, seed=True)
    try:
        stack.up(settings, emit=lambda _line: None, seed=_seed())
        statuses: Counter[int] = Counter()
        timeline: list[tuple[float, int]] = []
        lock = threading.Lock()
        stop = threading.Event()
        began = time.monotonic()

        def client(index: int) -> None:
            with httpx.Client(base_url=settings.api_url, trust_env=False, timeout=10) as http:
                n = index
                while not stop.is_set() and sum(statuses.values()) < MAX_REQUESTS:
                    if time.monotonic() - began > MAX_SECONDS:
                        return
                    response = http.get("/search", params={"q": QUERIES[n % len(QUERIES)], "limit": 5})
                    with lock:
                        statuses[response.status_code] += 1
                        timeline.append((time.monotonic() - began, response.status_code))
                    if response.status_code == 503:
                        assert response.json()["detail"] == "database unavailable"
                    n += CLIENTS

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        backend = EmbeddedBackend(settings, load_state(settings.state_file).db)
        gap_start = time.monotonic() - began
        backend.stop()
        time.sleep(1.0)  # the gap: PostgreSQL is down
        backend.start()
        gap_end = time.monotonic() - began
        time.sleep(2.0)
        stop.set()
        for thread in threads:
            thread.join()

        elapsed = time.monotonic() - began
        print(f"\nload: {dict(statuses)} over {elapsed:.1f} s; gap {gap_start:.2f}-{gap_end:.2f} s")
        assert set(statuses) <= {200, 503}, statuses  # never a 500, never a hang
        assert statuses[200] > 0 and statuses[503] > 0
        outside_gap = [code for at, code in timeline if at < gap_start - 0.1 or at > gap_end + 0.5]
        assert outside_gap.count(503) == 0  # 503s only during the gap
        assert timeline[-1][1] == 200  # recovered by itself, without restarting the API
    finally:
        stack.down(settings, emit=lambda _line: None)


def _seed():
    from ops.ingest import seed_iliad_book_one

    return seed_iliad_book_one
