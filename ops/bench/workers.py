"""The workers section: search throughput at concurrency 16 with 1, 2 and 4 API workers, and memory.

The live stack's own `up` is run again with `api_workers` set, so the API is what a user gets for
`workers = N` (plain uvicorn for one, the warm server's forked workers above), on the same port and
database. The load is the search section's driver (`ops.bench.load`); resident memory is read from
/proc (`ops.bench.memory`) once the load is over: RSS counts the pages a worker shares with the
supervisor (forked after the preload) in full, PSS splits them between their users.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from functools import partial
from typing import Any

from ops import api
from ops.bench import memory
from ops.bench.load import QUERIES, drive, http_call
from ops.bench.stats import ratio
from ops.settings import Settings
from ops.state import load_state_or_fresh

WORKER_COUNTS = (1, 2, 4)
CONCURRENCY = 16
MODE = "text"  # the API's default mode

Up = Callable[[Settings], str]  # brings the stack in line with these settings; the API's URL


def worker_figures(settings: Settings, up: Up, requests: int, deadline_s: float) -> dict[str, Any]:
    """For each count of workers: `up` with it, a warm-up, then `requests` searches (bounded by
    `deadline_s`) at concurrency 16, and each worker's RSS and PSS after them. `up` again with
    `settings` after, so the next sections find the API as it was."""
    runs = []
    try:
        for count in WORKER_COUNTS:
            scaled = settings.model_copy(update={"api_workers": count})
            opener = partial(http_call, up(scaled), MODE)
            drive(opener, CONCURRENCY, 2 * len(QUERIES), deadline_s)  # warm-up: every worker's pool
            load = drive(opener, CONCURRENCY, requests, deadline_s)
            runs.append({"workers": count, **load, **_memory(scaled)})
    finally:
        up(settings)
    single = runs[0]["throughput_rps"]
    for run in runs:
        run["speedup"] = ratio(run["throughput_rps"], single)
    return {"mode": MODE, "concurrency": CONCURRENCY, "runs": runs}


def _memory(settings: Settings) -> dict[str, Any]:
    """Each worker's RSS and PSS, and the supervisor's RSS (None for plain uvicorn: it is its one
    worker), in MB."""
    record = load_state_or_fresh(settings.state_file).api
    workers = api.workers(settings, record)
    rss = [memory.rss_kb(pid) / 1024 for pid in workers.running]
    pss = [memory.pss_kb(pid) / 1024 for pid in workers.running]
    supervisor = memory.rss_kb(int(record.pid or 0)) / 1024 if record.server == "warm" else None
    return {
        "running": len(workers.running),
        "rss_per_worker_mb": _mean(rss),
        "pss_per_worker_mb": _mean(pss),
        "supervisor_rss_mb": None if supervisor is None else round(supervisor, 1),
        "total_rss_mb": round(sum(rss) + (supervisor or 0.0), 1),
    }


def _mean(values: list[float]) -> float | None:
    return round(statistics.mean(values), 1) if values else None
