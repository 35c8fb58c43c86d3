"""diagnose's reading of /metrics, from real prometheus_client exposition: req/s, the 5xx share and
p99 since start and over the last minute; no /metrics and a garbage body are notes."""

from __future__ import annotations

import json
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ops.diagnosis.metrics import HISTORY_FILE, Scrape, p99, read_metrics, scrape
from ops.diagnosis.render import metrics_lines
from ops.procs import free_port
from tests.support.metrics import exposition, traffic

NOW = 1_800_000_000.0
URL = "http://127.0.0.1:8000/metrics"


def served(body: str) -> Scrape:
    return Scrape(URL, 200, body)


def test_since_start_counts_rate_errors_and_p99_from_the_histogram(tmp_path):
    requests = [*traffic(197), *traffic(3, seconds=2.0), *traffic(50, route="/health", status=503)]
    body = exposition([*requests, *traffic(40, route="/metrics")], started=NOW - 100)
    facts = read_metrics(served(body), tmp_path, NOW)
    assert facts.note is None and facts.uptime_s == 100.0
    since = facts.since_start
    assert since["requests"] == 250 and since["rps"] == 2.5  # /metrics (diagnose's own) left out
    assert since["errors_5xx"] == 50 and since["error_rate"] == 0.2
    assert since["p99_s"] == 2.5  # 247 of 250 within 5 ms is 98.8%: the 99th is in (1, 2.5]
    health = next(route for route in facts.routes if route["route"] == "/health GET")
    assert health["p99_s"] == 0.005 and health["error_rate"] == 1.0
    search = next(route for route in facts.routes if route["route"] == "/search GET")
    assert search["requests"] == 200 and search["p99_s"] == 2.5  # 3 of 200 slow: 197 is 98.5%
    assert search["error_rate"] == 0.0
    assert facts.extras["db_unavailable"] == 0 and facts.extras["pools"] == {
        "primary": {"size": 5.0, "checked_out": 2.0}
    }
    assert facts.last_minute is None  # no earlier scrape


def test_a_p99_beyond_the_last_bucket_says_so():
    assert p99({"0.5": 0.0, "10.0": 50.0, "+Inf": 100.0}) == (None, 10.0)
    assert p99({"0.5": 99.0, "10.0": 100.0, "+Inf": 100.0}) == (0.5, None)
    assert p99({"0.5": 0.0, "+Inf": 0.0}) == (None, None)


def test_the_last_minute_compares_with_the_kept_scrape_of_the_same_process(tmp_path):
    first = exposition(traffic(100), started=NOW - 500)
    read_metrics(served(first), tmp_path, NOW)
    kept = tmp_path / HISTORY_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert json.loads(kept.read_text())["scrapes"][0]["requests"] == {"/search GET 200": 100.0}
    later = exposition(
        [*traffic(100), *traffic(30), *traffic(10, status=500, seconds=0.3)], started=NOW - 500
    )
    facts = read_metrics(served(later), tmp_path, NOW + 20)
    minute = facts.last_minute
    assert minute == {
        "window_s": 20.0,
        "requests": 40,
        "rps": 2.0,
        "errors_5xx": 10,
        "error_rate": 0.25,
        "p99_s": 0.5,
        "p99_over_s": None,
    }
    assert facts.since_start["requests"] == 140
    assert metrics_lines(facts.as_dict())[:2] == [
        "metrics    last 20 s: 2.00 req/s, 25.0% 5xx, p99 <= 500 ms; "
        "since start (9 min): 0.27 req/s, 7.1% 5xx, p99 <= 500 ms",
        "  /search GET            140 req  0.27 req/s, 7.1% 5xx, p99 <= 500 ms",
    ]


def test_a_restarted_api_or_an_old_scrape_gives_no_last_minute(tmp_path):
    read_metrics(served(exposition(traffic(5), started=NOW - 50)), tmp_path, NOW)
    restarted = read_metrics(served(exposition(traffic(1), started=NOW + 5)), tmp_path, NOW + 10)
    assert restarted.last_minute is None and restarted.since_start["requests"] == 1
    stale = read_metrics(served(exposition(traffic(9), started=NOW + 5)), tmp_path, NOW + 100)
    assert stale.last_minute is None


@pytest.mark.parametrize(
    ("got", "note"),
    [
        (Scrape(URL, 404, '{"detail":"Not Found"}'), "no /metrics (404): an older API, or METRICS=off"),
        (Scrape(URL, None, "ConnectionRefusedError"), "not read: nothing answered"),
        (Scrape(URL, 200, "<html><body>hello</body></html>\n"), "not read: /metrics is not Prometheus text"),
        (Scrape(URL, 200, '{"status": "ok"}'), "not read: /metrics is not Prometheus text"),
        (Scrape(URL, 200, "python_gc_objects_collected_total 3.0\n"), "no homer_ series"),
        (Scrape(URL, 500, "Internal Server Error"), "not read: /metrics answered 500"),
    ],
)
def test_no_metrics_or_garbage_is_a_note(tmp_path, got, note):
    facts = read_metrics(got, tmp_path, NOW)
    assert facts.note is not None and note in facts.note
    assert facts.since_start is None and not (tmp_path / HISTORY_FILE).exists()
    assert metrics_lines(facts.as_dict()) == [f"metrics    {facts.note}"]


def test_scrape_reads_a_real_http_metrics_endpoint_and_a_closed_port():
    body = exposition(traffic(3), started=NOW)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = body.encode()
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        got = scrape(f"http://127.0.0.1:{server.server_port}", timeout=2)
    finally:
        server.shutdown()
        server.server_close()
    assert got.status == 200 and got.body == body
    closed = scrape(f"http://127.0.0.1:{free_port()}", timeout=2)
    assert closed.status is None and closed.body == "ConnectionRefusedError"
