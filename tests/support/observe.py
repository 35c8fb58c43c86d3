"""Reading the API's observability: a /metrics scrape as numbers, its log lines captured, a real uvicorn."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from app import logs
from ops.procs import free_port
from tests.support.paths import PROJECT_DIR

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Any) -> Samples:
    """GET /metrics (asserted 200, Prometheus text) as {(sample name, labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series has not been seen yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@contextmanager
def captured_log(log_format: str = "json") -> Iterator[io.StringIO]:
    """The app's logging (app.logs.configure) into a buffer; back to stderr afterwards."""
    buffer = io.StringIO()
    logs.configure(log_format, stream=buffer)
    try:
        yield buffer
    finally:
        logs.configure("json")


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@contextmanager
def table_locked(database_url: str, table: str) -> Iterator[None]:
    """`table` held in ACCESS EXCLUSIVE mode by another session: any query on it waits."""
    locker = psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # held until rollback
        yield
    finally:
        locker.rollback()
        locker.close()


@contextmanager
def uvicorn_serving(database_url: str, log: Path, **env: str) -> Iterator[str]:
    """`python -m uvicorn app.main:app` on a free port, stdout and stderr to `log`; its URL once
    /health answers 200; stopped (SIGTERM) afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
    full_env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", **env}
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=PROJECT_DIR, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _healthy(url):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False
