"""The metrics section: search throughput with the API's instrumentation on and with METRICS=off.

Two plain uvicorns on the live stack's database (the reader role, as the stack's own API), one
with METRICS on and one with METRICS=off, both up at once. The same load (the search section's
driver and query mix, text mode, concurrency 16) goes to each in turn, in alternating rounds
(on, off, on, off, ...) so that a drift of the shared machine falls on both. Both log their
request lines (to /dev/null): only /metrics and its counters differ.
"""

from __future__ import annotations

from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from ops.bench.load import QUERIES, drive, http_call
from ops.bench.stats import ratio
from ops.bench.up_timing import bare_uvicorn, clean_env
from ops.endpoint import Endpoint

CONCURRENCY = 16
MODE = "text"
ROUNDS = 2
SETTINGS = ("on", "off")


def metrics_cost_figures(project: Path, reader: Endpoint, requests: int, deadline_s: float) -> dict[str, Any]:
    """Requests per second with METRICS on and off (`requests` each, split over ROUNDS rounds), and
    on / off: the share of the throughput the instrumentation leaves."""
    per_round = max(requests // ROUNDS, len(QUERIES))
    totals = {setting: {"requests": 0, "errors": 0, "seconds": 0.0} for setting in SETTINGS}
    url_env = {**clean_env(), "DATABASE_URL": reader.url()}
    with ExitStack() as apis:
        urls = {
            setting: apis.enter_context(bare_uvicorn(project, {**url_env, "METRICS": setting}))
            for setting in SETTINGS
        }
        openers = {setting: partial(http_call, url, MODE) for setting, url in urls.items()}
        for opener in openers.values():
            drive(opener, CONCURRENCY, 2 * len(QUERIES), deadline_s)  # warm-up: pool connections
        for _ in range(ROUNDS):
            for setting, opener in openers.items():
                _add(totals[setting], drive(opener, CONCURRENCY, per_round, deadline_s))
    runs = {setting: {**total, "throughput_rps": _rps(total)} for setting, total in totals.items()}
    for run in runs.values():
        del run["seconds"]
    return {
        "mode": MODE,
        "concurrency": CONCURRENCY,
        "rounds": ROUNDS,
        "on": runs["on"],
        "off": runs["off"],
        "ratio": ratio(runs["on"]["throughput_rps"], runs["off"]["throughput_rps"], 3),
    }


def _add(total: dict[str, Any], load: dict[str, Any]) -> None:
    """One round's load into the setting's totals (its time from the answered requests and req/s)."""
    answered = load["requests"] - load["errors"]
    total["requests"] += load["requests"]
    total["errors"] += load["errors"]
    total["seconds"] += answered / load["throughput_rps"] if load["throughput_rps"] else 0.0


def _rps(total: dict[str, Any]) -> float | None:
    answered = total["requests"] - total["errors"]
    return round(answered / total["seconds"], 1) if total["seconds"] else None
