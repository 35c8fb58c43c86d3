"""`invoke bench`: the stack's cold and warm `up` against the same steps run bare.

Each figure is the median of `repeats` runs in one session; compare them as ratios.
Commands run as a user types them (a subprocess), so interpreter start-up counts.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from ops.backends.embedded import SERVICE_USER, _allow_traverse, _service_account, pg_bin_dir
from ops.procs import free_port, terminate


def _timed(action: Callable[[], Any]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def _invoke(project: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=project, env=env, check=True, capture_output=True
    )


def stack_figures(project: Path, repeats: int = 3) -> dict[str, Any]:
    """Cold `up` (no data), warm `up` (all healthy), and the bare steps, in seconds (medians)."""
    cold, warm, bare = [], [], []
    steps: dict[str, list[float]] = {}
    for _ in range(repeats):
        state_dir = Path(tempfile.mkdtemp(prefix="bench-"))
        env = {**os.environ, "OPS_STATE_DIR": str(state_dir), "OPS_BACKEND": "embedded",
               "OPS_SEED": "false", "OPS_API_PORT": str(free_port())}  # fmt: skip
        try:
            cold.append(_timed(lambda env=env: _invoke(project, env, "up")))
            for step in json.loads((state_dir / "state.json").read_text())["steps"]:
                steps.setdefault(step["name"], []).append(step["duration_s"])
            warm.append(_timed(lambda env=env: _invoke(project, env, "up")))
        finally:
            _invoke(project, env, "down", "--volumes")
            shutil.rmtree(state_dir, ignore_errors=True)
        bare.append(bare_steps(project))
    return {
        "cold_up_s": statistics.median(cold),
        "warm_up_s": statistics.median(warm),
        "cold_up_steps_s": {name: statistics.median(values) for name, values in steps.items()},
        "bare_s": {key: statistics.median(run[key] for run in bare) for key in bare[0]},
    }


def bare_steps(project: Path) -> dict[str, float]:
    """initdb + pg_ctl start, `alembic upgrade head`, uvicorn to its first 200: what a script does."""
    work = Path(tempfile.mkdtemp(prefix="bare-"))
    data, port, api_port = work / "data", free_port(), free_port()
    runner = _service_account()
    as_user = ["runuser", "-u", SERVICE_USER, "--"] if runner else []
    if runner:
        os.chown(work, runner.pw_uid, runner.pw_gid)
        _allow_traverse(work)
    bin_dir = pg_bin_dir()
    password = "bare-bench"
    pwfile = work / "pw"
    pwfile.write_text(password)
    if runner:
        os.chown(pwfile, runner.pw_uid, runner.pw_gid)
    url = f"postgresql+psycopg://postgres:{password}@127.0.0.1:{port}/postgres"
    figures: dict[str, float] = {}
    api = None
    try:
        began = time.perf_counter()
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--no-sync",
                        "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-instructions"],
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(work / "log"),
                        "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {work}", "start"],
                       check=True, capture_output=True)  # fmt: skip
        figures["initdb_and_start_s"] = time.perf_counter() - began
        env = {**os.environ, "DATABASE_URL": url}
        figures["alembic_upgrade_s"] = _timed(
            lambda: subprocess.run(
                [sys.executable, "-m", "alembic", "upgrade", "head"],
                cwd=project,
                env=env,
                check=True,
                capture_output=True,
            )
        )
        began = time.perf_counter()
        api = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(api_port)],
                               cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
        while True:
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=1, trust_env=False).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        figures["uvicorn_first_200_s"] = time.perf_counter() - began
        figures["total_s"] = sum(figures.values())
        return figures
    finally:
        if api is not None:
            terminate(api.pid)
            api.wait()
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True, check=False)  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)


# --- search ---------------------------------------------------------------------------------

SEARCH_QUERIES = (
    "μῆνιν ἄειδε θεὰ",  # accented
    "μηνιν αειδε",  # accentless
    "Πηληϊάδεω Ἀχιλῆος",
    "πηληιαδεω αχιλησς",  # misspelled
    "ἄνδρα",  # short
    "Ἕκτωρ",
    "εκτορα",
    "ροδοδακτυλος ηως",
    "πολυμητις οδυσσευς",  # a typo away from the text
    "ὣς ἔφατ᾽ ἔδεισεν δ᾽ ὃ γέρων καὶ ἐπείθετο μύθῳ",  # long
    "βῆ δ᾽ ἀκέων παρὰ θῖνα πολυφλοίσβοιο θαλάσσης",
    "αγαμεμνων",
)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def search_figures(
    api_url: str, mode: str, concurrency: int, requests: int = 400, deadline_s: float = 60.0
) -> dict[str, Any]:
    """p50/p90/p99 latency (ms), throughput and errors of GET /search at `concurrency` (loopback only)."""
    from concurrent.futures import ThreadPoolExecutor

    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + deadline_s

    def worker(index: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=api_url, trust_env=False, timeout=10) as client:
            for n in range(index, requests, concurrency):
                if time.monotonic() > stop_at:
                    return
                query = SEARCH_QUERIES[n % len(SEARCH_QUERIES)]
                began = time.perf_counter()
                response = client.get("/search", params={"q": query, "mode": mode, "limit": 10})
                latencies.append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    errors += 1

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    elapsed = time.perf_counter() - began
    return {
        "mode": mode,
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(_percentile(latencies, 0.50), 2),
        "p90_ms": round(_percentile(latencies, 0.90), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        "throughput_rps": round(len(latencies) / elapsed, 1),
    }
