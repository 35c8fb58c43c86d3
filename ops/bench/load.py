"""Section 2: search latency through the API and as raw SQL, bounded in requests and time.

Load goes to loopback only. The raw SQL is what the API sends for the same queries:
`app.search.prepared_statement` is run once per query with SQLAlchemy's cursor events recording
each statement and its parameters as psycopg receives them, then replayed over a plain
psycopg connection with the API's role and statement timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Any

import httpx
import psycopg
from sqlalchemy import create_engine, event, pool, text

from app.config import AppSettings
from app.embedding import default_embedder
from app.search import Mode, SearchQuery, prepared_statement
from ops.bench.stats import latency_summary, percentile, ratio
from ops.endpoint import Endpoint

# (kind, query): every kind in each run of seven, so any prefix of the cycle mixes them.
QUERIES: tuple[tuple[str, str], ...] = (
    ("accented", "μῆνιν ἄειδε θεὰ"),
    ("accentless", "μηνιν αειδε"),
    ("misspelled", "πηληιαδεω αχιλησς"),  # Πηληϊάδεω Ἀχιλῆος, two letters off
    ("short", "ἄνδρα"),
    ("long", "ὣς ἔφατ᾽ ἔδεισεν δ᾽ ὃ γέρων καὶ ἐπείθετο μύθῳ"),
    ("common", "καὶ"),  # in 5,012 of 27,793 verses
    ("beginning", "αχιλ"),  # the beginning of Ἀχιλλεύς, Ἀχιλῆος, ...
    ("accented", "Πηληϊάδεω Ἀχιλῆος"),
    ("accentless", "ροδοδακτυλος ηως"),
    ("misspelled", "μηνιν αιεδε θεα"),  # a transposition
    ("short", "Ἕκτωρ"),
    ("long", "βῆ δ᾽ ἀκέων παρὰ θῖνα πολυφλοίσβοιο θαλάσσης"),
    ("common", "δέ"),  # 4,290 verses
    ("beginning", "πηληια"),
    ("accented", "κορυθαίολος Ἕκτωρ"),
    ("accentless", "αγαμεμνων"),
    ("misspelled", "ποδαρκησ διοσ αχιλευς"),  # one λ short
    ("short", "ηως"),
    ("long", "ατρειδης τε αναξ ανδρων και διος αχιλλευς"),
    ("common", "τε"),  # 2,245 verses
    ("beginning", "οδυσσ"),
)
MODES = ("text", "vector", "hybrid")
CONCURRENCY = (1, 4, 16)

Call = Callable[[int], bool]  # query index -> answered correctly
Opener = Callable[[], AbstractContextManager[Call]]


def drive(open_call: Opener, concurrency: int, requests: int, deadline_s: float) -> dict[str, Any]:
    """`requests` calls over `concurrency` threads, each with its own client, stopping at `deadline_s`."""
    samples: list[tuple[str, float]] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline_s

    def worker(index: int) -> None:
        nonlocal errors
        with open_call() as call:
            for n in range(index, requests, concurrency):
                if time.monotonic() > stop_at:
                    return
                kind = QUERIES[n % len(QUERIES)][0]
                began = time.perf_counter()
                try:
                    ok = call(n % len(QUERIES))
                except (httpx.HTTPError, psycopg.Error):
                    ok = False
                elapsed_ms = (time.perf_counter() - began) * 1000
                with lock:
                    if ok:
                        samples.append((kind, elapsed_ms))
                    else:
                        errors += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    figures = latency_summary([ms for _, ms in samples], time.perf_counter() - began, errors)
    figures["p50_ms_by_kind"] = {
        kind: round(percentile([ms for k, ms in samples if k == kind], 0.5), 2)
        for kind in dict.fromkeys(k for k, _ in QUERIES)
        if any(k == kind for k, _ in samples)
    }
    return figures


@contextmanager
def http_call(api_url: str, mode: str) -> Iterator[Call]:
    """GET /search on the API (a loopback URL) with its own connection."""
    if not api_url.startswith(("http://127.0.0.1:", "http://[::1]:")):
        raise ValueError(f"the bench sends load to loopback only, not {api_url}")
    with httpx.Client(base_url=api_url, trust_env=False, timeout=10) as client:

        def call(index: int) -> bool:
            params: dict[str, str | int] = {"q": QUERIES[index][1], "mode": mode, "limit": 10}
            return client.get("/search", params=params).status_code == 200

        yield call


@contextmanager
def health_call(api_url: str) -> Iterator[Call]:
    """GET /health on the API: the baseline a search's latency is compared with, in the same run."""
    with httpx.Client(base_url=api_url, trust_env=False, timeout=10) as client:
        yield lambda _index: client.get("/health").status_code == 200


def captured_statements(owner_url: str, mode: str) -> list[list[tuple[str, Any]]]:
    """Per query, the statements and parameters the API's code sends to psycopg for it."""
    engine = create_engine(owner_url, poolclass=pool.NullPool)
    seen: list[tuple[str, Any]] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append((args[2], args[3])))
    per_query = []
    try:
        for _, q in QUERIES:
            with engine.connect() as conn:
                seen.clear()
                statement, params = prepared_statement(conn, SearchQuery(q, Mode(mode)), default_embedder())
                conn.execute(text(statement), params).all()
                per_query.append(list(seen))
    finally:
        engine.dispose()
    return per_query


@contextmanager
def sql_call(reader: Endpoint, statements: list[list[tuple[str, Any]]]) -> Iterator[Call]:
    """The captured statements over one psycopg connection, as the API's role with its timeouts."""
    app = AppSettings.model_fields
    kwargs = reader.connect_kwargs(timeout=app["connect_timeout_s"].default)
    kwargs.update(
        options=f"-c statement_timeout={app['statement_timeout_ms'].default}", application_name="bench"
    )
    with psycopg.connect(**kwargs) as conn:

        def call(index: int) -> bool:
            try:
                for statement, params in statements[index]:
                    conn.execute(statement, params).fetchall()
            finally:
                conn.rollback()  # what the API's pool does when the connection comes back
            return True

        yield call


def search_figures(
    api_url: str, owner: Endpoint, reader: Endpoint, requests: int, deadline_s: float
) -> dict[str, Any]:
    """Every mode at every concurrency through the API; raw SQL at concurrency 1; their ratio."""
    cells, raw = [], []
    health = partial(health_call, api_url)
    drive(health, 4, len(QUERIES), deadline_s)
    baseline = {"concurrency": 4, **drive(health, 4, requests, deadline_s)}
    for mode in MODES:
        opener = partial(http_call, api_url, mode)
        drive(opener, 4, 2 * len(QUERIES), deadline_s)  # warm-up: pool connections, caches
        for concurrency in CONCURRENCY:
            cells.append(
                {"mode": mode, "concurrency": concurrency, **drive(opener, concurrency, requests, deadline_s)}
            )
    for mode in MODES:
        opener = partial(sql_call, reader, captured_statements(owner.url(), mode))
        drive(opener, 1, len(QUERIES), deadline_s)
        figures = drive(opener, 1, requests, deadline_s)
        api = next(c for c in cells if c["mode"] == mode and c["concurrency"] == 1)
        figures.update(
            api_over_raw_p50=ratio(api["p50_ms"], figures["p50_ms"]),
            api_over_raw_p99=ratio(api["p99_ms"], figures["p99_ms"]),
        )
        raw.append({"mode": mode, "concurrency": 1, **figures})
    return {
        "queries": [{"kind": kind, "q": q} for kind, q in QUERIES],
        "api": cells,
        "raw_sql": raw,
        "health": baseline,
    }
