"""The API's Prometheus series, on a registry of its own (several apps in one process never collide).

`homer_http_requests_total{route,method,status}` and `homer_http_request_duration_seconds{route,
method}` by route template (`unmatched` when no route was chosen), `homer_searches_total{mode,
read_as}`, `homer_db_unavailable_total` (503s the database caused), `homer_statement_timeouts_total`
(504s), and `homer_db_pool_size{pool}` / `homer_db_pool_checked_out{pool}` read from SQLAlchemy's
pools at scrape time: `write` is DATABASE_URL's pool, `read` READ_DATABASE_URL's, present only when
that is set (without it the reads use the `write` pool). The process collector adds `process_*`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from app.observe import RequestFacts

if TYPE_CHECKING:
    from sqlalchemy import Engine

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others: "other"
CONTENT_TYPE = CONTENT_TYPE_LATEST

Pools = Callable[[], dict[str, "Engine"]]


def app_pools() -> dict[str, Engine]:
    """The app's engines by pool label: `write` always, `read` when READ_DATABASE_URL is set."""
    from app import db
    from app.config import get_settings

    pools = {"write": db.get_engine()}
    if get_settings().read_database_url:
        pools["read"] = db.get_read_engine()
    return pools


class PoolCollector:
    """Pool size and checked-out connections, read from the pools when /metrics is scraped."""

    def __init__(self, pools: Pools) -> None:
        self.pools = pools

    def collect(self) -> Iterable[Metric]:
        size = GaugeMetricFamily("homer_db_pool_size", "Connections the pool keeps", labels=["pool"])
        out = GaugeMetricFamily("homer_db_pool_checked_out", "Connections in use now", labels=["pool"])
        for name, engine in self.pools().items():
            pool = engine.pool
            size.add_metric([name], float(getattr(pool, "size", lambda: 0)()))
            out.add_metric([name], float(getattr(pool, "checkedout", lambda: 0)()))
        return [size, out]


class Metrics:
    def __init__(self, pools: Pools = app_pools) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "homer_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "homer_http_request_duration_seconds",
            "Time from the request to the end of the response, by route template and method",
            ["route", "method"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        own = self.registry
        self.searches = Counter("homer_searches", "Searches", ["mode", "read_as"], registry=own)
        self.db_unavailable = Counter("homer_db_unavailable", "503s the database caused", registry=own)
        self.statement_timeouts = Counter("homer_statement_timeouts", "504s: timeouts", registry=own)
        self.registry.register(PoolCollector(pools))

    def record(self, route: str, method: str, status: int, seconds: float, facts: RequestFacts) -> None:
        """Count one answered request."""
        method = method if method in METHODS else "other"
        self.requests.labels(route, method, str(status)).inc()
        self.duration.labels(route, method).observe(seconds)
        if facts.mode is not None and facts.read_as is not None:
            self.searches.labels(facts.mode, facts.read_as).inc()
        if facts.db_failure == "unavailable":
            self.db_unavailable.inc()
        elif facts.db_failure == "timeout":
            self.statement_timeouts.inc()

    def scrape(self) -> bytes:
        return generate_latest(self.registry)
