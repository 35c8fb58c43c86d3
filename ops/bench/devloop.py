"""Section: `invoke dev`'s loop against the API's own cold start, in the same run.

`invoke dev` runs in a subprocess (no terminal: plain lines) in a throwaway copy of the
project, so the edits never touch the checkout. Edit to served: a route's answer is changed in
`app/main.py` and the clock runs from the write until the new answer comes back (polled every
5 ms). Cold start: bare uvicorn on the same database, from its spawn to the first 200. Crash to
healthy: `kill -9` of one of the warm server's workers (it forks another) and of the warm server
itself (`dev` starts a new one after its backoff). Idle: the CPU that `dev` and the warm server
use over a quiet period.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from app.driver import DRIVER
from ops.bench.polling import until
from ops.bench.up_timing import bare_uvicorn, clean_env, invoke
from ops.errors import ApiError
from ops.procs import free_port, terminate
from ops.signals import sigint_held

TIMEOUT_S = 120.0
POLL_S = 0.005
COPY_IGNORED = shutil.ignore_patterns(
    ".venv", ".ops", ".git", "artifacts", "__pycache__", ".*_cache", "*.egg-info", "tests", "docs"
)
PROBE = """

@app.get("/bench-probe", include_in_schema=False)
def bench_probe() -> dict[str, int]:
    return {"edit": %d}
"""


def dev_figures(
    project: Path, backend: str, edits: int, idle_s: float, image: str | None = None
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-dev-"))
    copy = work / "project"
    shutil.copytree(project, copy, ignore=COPY_IGNORED)
    state_dir = work / "state"
    env = clean_env(
        state_dir=str(state_dir),
        stack=f"bench-dev-{secrets.token_hex(3)}",
        backend=backend,
        seed="false",
        api_port=str(free_port()),
        **({"docker_image": image} if image else {}),
    )
    main = copy / "app" / "main.py"
    original = main.read_text()
    main.write_text(original + PROBE % 0)
    log = open(work / "dev.log", "wb")  # noqa: SIM115 - closed in finally
    dev = subprocess.Popen(
        [sys.executable, "-m", "invoke", "dev"], cwd=copy, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        url = _until(lambda: _api_url(state_dir), "invoke dev's API")
        _until(lambda: _answer(url) == 0, "the first answer")
        served = [_edit_to_served(main, original, url, n) for n in range(1, edits + 1)]
        cold = [_cold_start(copy, env, state_dir) for _ in range(3)]
        worker_crash = _crash_to_healthy(url, state_dir, worker=True)
        server_crash = _crash_to_healthy(url, state_dir, worker=False)
        idle = _idle_cpu(dev.pid, state_dir, idle_s)
    finally:
        with sigint_held():
            if dev.poll() is None:
                os.killpg(dev.pid, signal.SIGTERM)
                try:
                    dev.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    terminate(dev.pid)
            log.close()
            invoke(copy, env, "down", "--volumes", check=False)
            shutil.rmtree(work, ignore_errors=True)
    cold_median = statistics.median(cold)
    p50 = statistics.median(served)
    return {
        "edits": edits,
        "edit_to_served_s": [round(s, 4) for s in served],
        "edit_to_served_p50_s": p50,
        "edit_to_served_max_s": max(served),
        "api_cold_start_s": cold_median,
        "api_cold_start_runs_s": [round(s, 4) for s in cold],
        "ratio_served_p50_to_cold": round(p50 / cold_median, 3),
        "worker_crash_to_healthy_s": worker_crash,
        "server_crash_to_healthy_s": server_crash,
        "idle_s": idle_s,
        "idle_cpu_percent": idle,
    }


def _edit_to_served(main: Path, original: str, url: str, n: int) -> float:
    time.sleep(0.3)  # apart, as a developer's saves are
    began = time.perf_counter()
    main.write_text(original + PROBE % n)
    _until(lambda: _answer(url) == n, f"edit {n} to be served", poll=POLL_S)
    return time.perf_counter() - began


def _cold_start(copy: Path, env: dict[str, str], state_dir: Path) -> float:
    """Bare uvicorn on the dev stack's database, spawn to first 200 (the API's own cold start)."""
    db = _record(state_dir, "db")
    url = f"{DRIVER}://{db['user']}:{db['password']}@{db['host']}:{db['port']}/{db['database']}"
    began = time.perf_counter()
    with bare_uvicorn(copy, {**env, "DATABASE_URL": url}):
        return time.perf_counter() - began


def _crash_to_healthy(url: str, state_dir: Path, worker: bool) -> float:
    server = _api_pid(state_dir)
    victims = psutil.Process(server).children() if worker else [psutil.Process(server)]
    began = time.perf_counter()
    for victim in victims:
        victim.kill()
    if not worker:
        _until(lambda: _api_pid(state_dir) not in (None, server), "a new warm server")
    _until(lambda: _health(url) == 200, "/health after the crash", poll=POLL_S)
    return round(time.perf_counter() - began, 4)


def _idle_cpu(dev_pid: int, state_dir: Path, seconds: float) -> float:
    """CPU seconds per wall second, in percent, of `dev` and the warm server with its workers."""
    time.sleep(1.0)
    server = psutil.Process(_api_pid(state_dir) or dev_pid)
    watched = [psutil.Process(dev_pid), server, *server.children()]
    before = sum(sum(p.cpu_times()[:2]) for p in watched)
    time.sleep(seconds)
    after = sum(sum(p.cpu_times()[:2]) for p in watched)
    return round((after - before) / seconds * 100, 2)


def _record(state_dir: Path, part: str) -> dict[str, Any]:
    """The dev stack's state file's `part` ("api", "db"); empty while it is missing or being written."""
    try:
        found = json.loads((state_dir / "state.json").read_text())[part]
    except (OSError, ValueError, KeyError):
        return {}
    return found if isinstance(found, dict) else {}


def _api_url(state_dir: Path) -> str | None:
    return _record(state_dir, "api").get("url")


def _api_pid(state_dir: Path) -> int | None:
    return _record(state_dir, "api").get("pid")


def _answer(url: str) -> int | None:
    try:
        response = httpx.get(f"{url}/bench-probe", timeout=2, trust_env=False)
    except httpx.HTTPError:
        return None
    return response.json().get("edit") if response.status_code == 200 else None


def _health(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/health", timeout=2, trust_env=False).status_code
    except httpx.HTTPError:
        return None


def _until(probe: Callable[[], Any], what: str, poll: float = 0.05) -> Any:
    return until(probe, f"{what} (bench: invoke dev)", ApiError, poll, TIMEOUT_S)
