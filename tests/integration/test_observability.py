"""Issue 17, the app's side: /metrics by route template, X-Request-ID, the JSON log line, 5xx bodies.

The app runs in-process on the session's real PostgreSQL (the `client` fixture), or under a real
uvicorn for what only a server shows (its own log lines through the same formatter, no access log).
Each `client_for` runs the app's lifespan, so it starts with a fresh registry of metrics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import routes
from ops.procs import free_port
from tests.support.app import client_for
from tests.support.observe import captured_log, json_lines, scrape, table_locked, uvicorn_serving, value
from tests.support.paths import PROJECT_DIR
from tests.support.warm_server import Warm, wait_until

REQUESTS = "homer_http_requests_total"
DURATION_COUNT = "homer_http_request_duration_seconds_count"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
ISO_MS_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
REQUEST_KEYS = {
    "time",
    "level",
    "logger",
    "message",
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
}


def test_metrics_count_real_requests_by_route_template(client: TestClient) -> None:
    before = scrape(client)
    for path in ("/search?q=μηνιν", "/search?q=mh=nin", "/passages/iliad/1.1-3", "/passages/odyssey/1.1"):
        assert client.get(path).status_code == 200
    assert client.get("/no/such/path?token=hunter2").status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(REQUESTS, route="/search", method="GET", status="200") == 2
    assert delta(REQUESTS, route="/passages/{work}/{ref}", method="GET", status="200") == 2
    assert delta(REQUESTS, route="unmatched", method="GET", status="404") == 1
    assert delta(DURATION_COUNT, route="/search", method="GET") == 2
    assert delta("homer_searches_total", mode="text", read_as="greek") == 1
    assert delta("homer_searches_total", mode="text", read_as="betacode") == 1
    routes_seen = {dict(labels).get("route") for _, labels in after} - {None}
    assert routes_seen <= {"/search", "/passages/{work}/{ref}", "/works", "/health", "/metrics", "unmatched"}
    assert not any("hunter2" in repr(key) or "1.1-3" in repr(key) for key in after)


def test_pool_gauges_and_process_start_are_numbers(client: TestClient) -> None:
    assert client.get("/works").status_code == 200
    samples = scrape(client)
    assert value(samples, "homer_db_pool_size", pool="write") == 8  # app/db.py's pool_size
    assert value(samples, "homer_db_pool_checked_out", pool="write") == 0  # the request gave it back
    assert ("homer_db_pool_size", frozenset({("pool", "read")})) not in samples  # no READ_DATABASE_URL
    assert value(samples, "process_start_time_seconds") > 1e9


def test_request_id_is_echoed_and_in_the_json_log_line(client: TestClient) -> None:
    with captured_log() as log:
        response = client.get(
            "/search", params={"q": "μηνιν", "limit": 3}, headers={"X-Request-ID": "t-42.a:b"}
        )
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "t-42.a:b"
    [line] = [line for line in json_lines(log.getvalue()) if line["request_id"] == "t-42.a:b"]
    assert set(line) == REQUEST_KEYS | {"mode", "count"}
    assert line["logger"] == "homer.request" and line["level"] == "info"
    assert line["message"] == "GET /search 200" and line["route"] == "/search" and line["status"] == 200
    assert line["mode"] == "text" and line["count"] == response.json()["count"] == 3
    assert ISO_MS_UTC.fullmatch(line["time"]) and isinstance(line["duration_ms"], float)
    assert "μηνιν" not in log.getvalue()  # the route template, never the query string


@pytest.mark.parametrize("given", [None, "has space", "x" * 65, "a/b", ""])
def test_an_invalid_or_missing_request_id_is_replaced(client: TestClient, given: str | None) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    first, second = (client.get("/works", headers=headers) for _ in range(2))
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(GENERATED_ID.fullmatch(i) for i in ids) and ids[0] != ids[1]


def test_log_format_text_has_the_same_content(client: TestClient) -> None:
    with captured_log("text") as log:
        client.get("/works", headers={"X-Request-ID": "plain-1"})
    [line] = [line for line in log.getvalue().splitlines() if "request_id=plain-1" in line]
    assert ISO_MS_UTC.match(line)
    assert " info homer.request GET /works 200 request_id=plain-1 method=GET route=/works status=200 " in line


def test_database_down_is_a_counted_503_with_the_request_id() -> None:
    with client_for(f"postgresql+psycopg://homer:x@127.0.0.1:{free_port()}/homer") as client:
        response = client.get("/works", headers={"X-Request-ID": "down-1"})
        health = client.get("/health", headers={"X-Request-ID": "down-2"})
        samples = scrape(client)
    assert response.status_code == 503 and health.status_code == 503
    assert response.json() == {"detail": "database unavailable", "request_id": "down-1"}
    assert health.json()["request_id"] == "down-2"
    assert value(samples, "homer_db_unavailable_total") == 2
    assert value(samples, REQUESTS, route="/works", method="GET", status="503") == 1
    assert value(samples, "homer_statement_timeouts_total") == 0


def test_statement_timeout_is_a_counted_504_with_the_request_id(db_url: str, client: TestClient) -> None:
    with table_locked(db_url, "text_segment"), client_for(db_url, STATEMENT_TIMEOUT_MS="300") as slow:
        response = slow.get("/search?q=μηνιν", headers={"X-Request-ID": "slow-1"})
        samples = scrape(slow)
    assert response.status_code == 504
    assert response.json() == {"detail": "the query took too long and was cancelled", "request_id": "slow-1"}
    assert value(samples, "homer_statement_timeouts_total") == 1
    assert value(samples, REQUESTS, route="/search", method="GET", status="504") == 1
    assert value(samples, "homer_db_unavailable_total") == 0


def test_an_unhandled_error_is_a_500_with_the_request_id_and_a_logged_traceback(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_conn: object) -> None:
        raise RuntimeError("a bug in the works listing")

    monkeypatch.setattr(routes.queries, "works", broken)
    with client_for(db_url) as client, captured_log() as log:
        response = client.get("/works", headers={"X-Request-ID": "bug-1"})
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "bug-1"
    assert response.json() == {"detail": "internal server error", "request_id": "bug-1"}
    lines = [line for line in json_lines(log.getvalue()) if line.get("request_id") == "bug-1"]
    assert [line["logger"] for line in lines] == ["homer.error", "homer.request"]
    assert "RuntimeError: a bug in the works listing" in lines[0]["exc_info"]
    assert lines[1]["status"] == 500 and lines[1]["level"] == "error"


def test_metrics_off_is_a_404_and_request_ids_still_work(db_url: str) -> None:
    with client_for(db_url, METRICS="off") as client:
        response = client.get("/metrics", headers={"X-Request-ID": "off-1"})
    assert response.status_code == 404 and response.headers["X-Request-ID"] == "off-1"


def test_under_uvicorn_every_line_is_json_and_uvicorn_lines_use_the_same_formatter(
    db_url: str, tmp_path: Path
) -> None:
    import httpx

    log = tmp_path / "api.log"
    with uvicorn_serving(db_url, log) as url:
        response = httpx.get(f"{url}/works", headers={"X-Request-ID": "live-1"}, trust_env=False)
    assert response.headers["X-Request-ID"] == "live-1"
    lines = json_lines(log.read_text())
    by_logger = {line["logger"] for line in lines}
    assert "uvicorn.access" not in by_logger and {"uvicorn.error", "homer.request"} <= by_logger
    messages = [line["message"] for line in lines if line["logger"] == "uvicorn.error"]
    assert any(m.startswith("Started server process") for m in messages), messages
    assert "Application startup complete." in messages
    assert all(ISO_MS_UTC.fullmatch(line["time"]) and line["level"].islower() for line in lines)
    [request] = [line for line in lines if line.get("request_id") == "live-1"]
    assert request["route"] == "/works" and request["status"] == 200
    password = db_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in log.read_text()


def test_under_the_warm_server_uvicorn_lines_and_request_lines_are_json(
    db_url: str, start_warm: Callable[..., Warm]
) -> None:
    warm = start_warm(app="app.main:app", cwd=PROJECT_DIR, env={"DATABASE_URL": db_url})
    warm.wait_for("ready")
    assert warm.get("/works") is not None
    lines = wait_until(lambda: _request_lines(warm.log), what="the request's log line")
    assert lines[-1]["route"] == "/works" and lines[-1]["status"] == 200
    uvicorn_lines = [line for line in _json_only(warm.log) if line["logger"].startswith("uvicorn")]
    messages = [line["message"] for line in uvicorn_lines]
    assert any(m.startswith("Started server process") for m in messages), warm.tail()
    assert not any(
        "Started server process" in raw for raw in warm.log.read_text().splitlines() if raw[:1] != "{"
    )


def _json_only(log: Path) -> list[dict]:
    return [json.loads(raw) for raw in log.read_text().splitlines() if raw.startswith("{")]


def _request_lines(log: Path) -> list[dict]:
    return [line for line in _json_only(log) if line["logger"] == "homer.request"]
