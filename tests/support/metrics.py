"""Real Prometheus exposition of the API's contract series, produced by prometheus_client itself
(generate_latest on a registry of its own), for diagnose's reading of /metrics."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def exposition(
    requests: Iterable[tuple[str, str, int, float]],
    started: float,
    searches: Iterable[tuple[str, str]] = (),
    db_unavailable: int = 0,
    statement_timeouts: int = 0,
) -> str:
    """/metrics as the API serves it, after `requests` ((route, method, status, seconds) each) and
    `searches` ((mode, read_as) each), for a process started at `started` (Unix time)."""
    registry = CollectorRegistry()
    Gauge("process_start_time_seconds", "start", registry=registry).set(started)
    total = Counter("homer_http_requests", "requests", ["route", "method", "status"], registry=registry)
    duration = Histogram(
        "homer_http_request_duration_seconds",
        "latency",
        ["route", "method"],
        buckets=BUCKETS,
        registry=registry,
    )
    for route, method, status, seconds in requests:
        total.labels(route, method, str(status)).inc()
        duration.labels(route, method).observe(seconds)
    counted = Counter("homer_searches", "searches", ["mode", "read_as"], registry=registry)
    for mode, read_as in searches:
        counted.labels(mode, read_as).inc()
    Counter("homer_db_unavailable", "503s", registry=registry).inc(db_unavailable)
    Counter("homer_statement_timeouts", "504s", registry=registry).inc(statement_timeouts)
    size = Gauge("homer_db_pool_size", "pool", ["pool"], registry=registry)
    out = Gauge("homer_db_pool_checked_out", "out", ["pool"], registry=registry)
    size.labels("primary").set(5)
    out.labels("primary").set(2)
    return generate_latest(registry).decode()


def traffic(count: int, route: str = "/search", status: int = 200, seconds: float = 0.004) -> list:
    """`count` alike requests."""
    return [(route, "GET", status, seconds)] * count
