"""diagnose's reading of the live API's `GET /metrics`: requests per second, the 5xx share and the
p99 latency, since the API started and over the last minute.

One scrape per diagnose, bounded like the other probes. "The last minute" compares it with the
earliest earlier scrape of the same API process (same `process_start_time_seconds`) made under a
minute ago, kept in `<state_dir>/metrics-last.json` (mode 0600). Keeping them costs nothing,
whereas a second scrape a second apart would add a second to every diagnose and measure one
second of traffic. With no recent scrape there is no "last minute", only "since start".

A missing /metrics (404 from an older API or METRICS=off, no API, a body that is not Prometheus
text) is a note, never a problem: it does not change diagnose's verdict. diagnose's own scrapes
(route /metrics) are left out of the totals.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ops.errors import first_line
from ops.health import get_once

HISTORY_FILE = "metrics-last.json"
WINDOW_S = 60.0
MIN_WINDOW_S = 1.0  # a scrape closer than this to the current one measures nothing
MAX_BODY = 4 << 20
SELF_ROUTES = frozenset({"/metrics"})
ROUTES_SHOWN = 6  # per-route lines in the table when there are at most this many
REQUESTS = "homer_http_requests_total"
BUCKETS = "homer_http_request_duration_seconds_bucket"


@dataclass(frozen=True)
class Scrape:
    """What GET /metrics answered: its status (None when nothing answered) and its body (or why not)."""

    url: str
    status: int | None
    body: str


def scrape(api_url: str, timeout: float) -> Scrape:
    """GET {api_url}/metrics once, bounded by `timeout`, never raising."""
    answer = get_once(api_url, "/metrics", timeout, limit=MAX_BODY)
    return Scrape(f"{api_url.rstrip('/')}/metrics", answer.status, answer.body)


@dataclass
class Snapshot:
    """The counters of one scrape: requests by "route method status", latency buckets by
    "route method" ({le: cumulative count}), and the API process's start time."""

    at: float
    started: float | None = None
    requests: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[str, float]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def minus(self, older: Snapshot) -> Snapshot:
        """The counts since `older` (a scrape of the same process)."""
        requests = {key: count - older.requests.get(key, 0.0) for key, count in self.requests.items()}
        buckets = {
            key: {le: count - older.buckets.get(key, {}).get(le, 0.0) for le, count in bounds.items()}
            for key, bounds in self.buckets.items()
        }
        return Snapshot(self.at, self.started, requests, buckets)


def parse(body: str, at: float) -> Snapshot:
    """A Snapshot of Prometheus text; ValueError when it is not Prometheus text or has no homer series."""
    from prometheus_client.parser import text_string_to_metric_families

    snap = Snapshot(at)
    seen = False
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            seen = seen or name.startswith("homer_")
            route = f"{labels.get('route', '?')} {labels.get('method', '?')}"
            if name == "process_start_time_seconds":
                snap.started = value
            elif name == REQUESTS:
                snap.requests[f"{route} {labels.get('status', '?')}"] = value
            elif name == BUCKETS:
                snap.buckets.setdefault(route, {})[labels.get("le", "+Inf")] = value
            else:
                _extra(snap.extras, name, labels, value)
    if not seen:
        raise ValueError("no homer_ series in it")
    return snap


def _extra(extras: dict[str, Any], name: str, labels: dict[str, str], value: float) -> None:
    """Searches by mode, the 503s and 504s, and the pools: shown as they are, since start."""
    if name == "homer_searches_total":
        key = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        extras.setdefault("searches", {})[key] = value
    elif name in ("homer_db_unavailable_total", "homer_statement_timeouts_total"):
        extras[name.removeprefix("homer_").removesuffix("_total")] = value
    elif name in ("homer_db_pool_size", "homer_db_pool_checked_out"):
        pool = extras.setdefault("pools", {}).setdefault(labels.get("pool", "?"), {})
        pool[name.removeprefix("homer_db_pool_")] = value


def p99(bounds: dict[str, float]) -> tuple[float | None, float | None]:
    """(the smallest `le` bound at or above the 99th percentile, None) from cumulative bucket counts;
    (None, the largest finite bound) when the 99th percentile is beyond it; (None, None) when empty."""
    ordered = sorted((float(le), count) for le, count in bounds.items())
    total = ordered[-1][1] if ordered else 0.0
    if total <= 0:
        return None, None
    for le, count in ordered:
        if count >= 0.99 * total:
            if math.isinf(le):
                finite = [bound for bound, _ in ordered if not math.isinf(bound)]
                return None, max(finite, default=None)
            return le, None
    return None, None


def figures(snap: Snapshot, seconds: float | None, route: str | None = None) -> dict[str, Any]:
    """requests, req/s, 5xx count and share, p99 of `snap` over `seconds` (one route, or all but /metrics)."""

    def wanted(route_method: str) -> bool:
        return route_method == route if route else route_method.split(" ", 1)[0] not in SELF_ROUTES

    counts = [(key.rsplit(" ", 1)[1], n) for key, n in snap.requests.items() if wanted(key.rsplit(" ", 1)[0])]
    total = sum(n for _, n in counts)
    errors = sum(n for status, n in counts if status.startswith("5"))
    merged: dict[str, float] = {}
    for key, bounds in snap.buckets.items():
        if wanted(key):
            for le, n in bounds.items():
                merged[le] = merged.get(le, 0.0) + n
    bound, beyond = p99(merged)
    return {
        "requests": int(total),
        "rps": round(total / seconds, 3) if seconds else None,
        "errors_5xx": int(errors),
        "error_rate": round(errors / total, 4) if total else None,
        "p99_s": bound,
        "p99_over_s": beyond,
    }


@dataclass
class MetricsFindings:
    """What /metrics told: since start, over the last minute, by route; or a note saying why nothing."""

    url: str
    status: int | None = None
    note: str | None = None
    uptime_s: float | None = None
    since_start: dict[str, Any] | None = None
    last_minute: dict[str, Any] | None = None
    routes: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_metrics(got: Scrape, state_dir: Path, now: float) -> MetricsFindings:
    """The findings of one scrape, compared with the earlier ones kept in `state_dir` (then kept too)."""
    facts = MetricsFindings(got.url, got.status)
    if got.status is None:
        facts.note = f"not read: nothing answered at {got.url} ({got.body})"
        return facts
    if got.status == 404:
        facts.note = "no /metrics (404): an older API, or METRICS=off"
        return facts
    if got.status != 200:
        facts.note = f"not read: /metrics answered {got.status}"
        return facts
    try:
        snap = parse(got.body, now)
    except Exception as exc:  # the parser's errors are ValueError, IndexError, ...: all one note
        facts.note = f"not read: /metrics is not Prometheus text ({first_line(exc)[:120]})"
        return facts
    facts.uptime_s = round(now - snap.started, 1) if snap.started else None
    facts.since_start = figures(snap, facts.uptime_s)
    keys = sorted(snap.buckets) or sorted({key.rsplit(" ", 1)[0] for key in snap.requests})
    facts.routes = [{"route": key, **figures(snap, facts.uptime_s, key)} for key in keys]
    facts.extras = snap.extras
    history = _history(state_dir / HISTORY_FILE, got.url, snap)
    earlier = next((old for old in history if now - old.at >= MIN_WINDOW_S), None)
    if earlier is not None:
        window = round(now - earlier.at, 1)
        facts.last_minute = {"window_s": window, **figures(snap.minus(earlier), window)}
    _keep(state_dir, got.url, [*history, snap])
    return facts


def _history(path: Path, url: str, current: Snapshot) -> list[Snapshot]:
    """The kept scrapes of the same API process under a minute old, oldest first."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        found = [Snapshot(**item) for item in kept["scrapes"]] if kept.get("url") == url else []
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []
    fresh = [s for s in found if s.started == current.started and 0 <= current.at - s.at < WINDOW_S]
    return sorted(fresh, key=lambda s: s.at)


def _keep(state_dir: Path, url: str, scrapes: list[Snapshot]) -> None:
    """Write the scrapes (without the extras) to <state_dir>/metrics-last.json, mode 0600; only where
    the stack's state dir exists, and a failure to write is no failure of diagnose."""
    if not state_dir.is_dir():
        return
    kept = {"url": url, "scrapes": [{**asdict(s), "extras": {}} for s in scrapes[-30:]]}
    path, tmp = state_dir / HISTORY_FILE, state_dir / f".{HISTORY_FILE}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(kept, handle)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


# --- for people ----------------------------------------------------------------------------


def metrics_lines(metrics: dict[str, Any] | None) -> list[str]:
    """The table's `metrics` line (the last minute, then since start), and one line per route if few."""
    if not metrics:
        return []
    if metrics["note"]:
        return [f"metrics    {metrics['note']}"]
    parts = []
    if metrics["last_minute"]:
        parts.append(f"last {metrics['last_minute']['window_s']:.0f} s: {_figures(metrics['last_minute'])}")
    since = f"since start ({_ago(metrics['uptime_s'])})" if metrics["uptime_s"] else "since start"
    parts.append(f"{since}: {_figures(metrics['since_start'])}")
    extras = metrics["extras"]
    failures = [f"{code} x{int(extras[key])}" for code, key in _FAILURES if extras.get(key)]
    lines = [f"metrics    {'; '.join(parts)}" + (f"; {', '.join(failures)}" if failures else "")]
    if len(metrics["routes"]) <= ROUTES_SHOWN:
        for route in metrics["routes"]:
            lines.append(f"  {route['route']:<18} {route['requests']:>7} req  {_figures(route)}")
    return lines


_FAILURES = (("503 db unavailable", "db_unavailable"), ("504 statement timeout", "statement_timeouts"))


def _figures(facts: dict[str, Any]) -> str:
    """`3.10 req/s, 0.5% 5xx, p99 <= 25 ms`."""
    rps = f"{facts['rps']:.2f} req/s" if facts["rps"] is not None else f"{facts['requests']} req"
    share = f"{facts['error_rate'] * 100:.1f}% 5xx" if facts["error_rate"] is not None else "no requests"
    if facts["p99_s"] is not None:
        latency = f"p99 <= {_duration(facts['p99_s'])}"
    elif facts["p99_over_s"] is not None:
        latency = f"p99 > {_duration(facts['p99_over_s'])}"
    else:
        latency = "p99 -"
    return f"{rps}, {share}, {latency}"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
