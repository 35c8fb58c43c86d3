"""Fixtures of the integration tests that several modules share."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, pool

from app.ingest import ingest
from ops.procs import free_port, pid_alive
from ops.warm_server import argv
from tests.support.paths import PROJECT_DIR
from tests.support.warm_server import Warm


@pytest.fixture
def own_initdb_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An initdb template cache of the test's own (XDG_CACHE_HOME), for it and the processes it
    starts: the template is built (the miss) and copied (the hit) here, never the real one."""
    root = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    return root


@pytest.fixture(scope="module")
def both_poems(db_url: str) -> Iterator[Connection]:
    """A connection to the session's database with the Iliad and the Odyssey loaded (idempotent)."""
    ingest(db_url, "all")
    engine = create_engine(db_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.fixture(scope="module")
def client(db_url: str) -> Iterator[TestClient]:
    """The app in-process on the session's database, both poems loaded (idempotent)."""
    from tests.support.app import client_for

    ingest(db_url, "all")
    with client_for(db_url) as client:
        yield client


@pytest.fixture
def search(client: TestClient) -> Callable[..., dict]:
    """GET /search with `q` and params, asserted 200; its JSON."""

    def run(q: str, **params: object) -> dict:
        response = client.get("/search", params={"q": q, **params})
        assert response.status_code == 200, response.text
        return response.json()

    return run


@pytest.fixture
def start_warm(tmp_path: Path) -> Iterator[Callable[..., Warm]]:
    """Start warm servers (`python -m ops.warm_server`) on free ports, with the project on PYTHONPATH;
    stop them (and any child they left) at the end."""
    started: list[Warm] = []

    def run(
        *extra: str,
        app: str = "mini.app:app",
        cwd: Path = tmp_path,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> Warm:
        port = port or free_port()
        events = tmp_path / f"events-{len(started)}.jsonl"
        log = tmp_path / f"warm-{len(started)}.log"
        command = [*argv(app, "127.0.0.1", port, events), *extra]
        full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        full_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])
        )
        with open(log, "wb") as out:
            proc = subprocess.Popen(command, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT)
        started.append(Warm(proc, port, events, log))
        return started[-1]

    yield run
    for warm in started:
        pids = warm.child_pids() | {pid for event in warm.events() for pid in event.get("pids", [])}
        pids |= {event["pid"] for event in warm.events("restarted")}
        if warm.proc.poll() is None:
            warm.proc.terminate()
        try:
            warm.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            warm.proc.kill()
            warm.proc.wait()
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
