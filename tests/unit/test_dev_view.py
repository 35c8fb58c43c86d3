"""The live view of `invoke dev`: the table, the terminal restored, plain lines off a terminal."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from ops.dev_view import (
    ComponentRow,
    LiveView,
    PlainView,
    format_duration,
    make_view,
    render_table,
    status_line,
    uptime,
)
from ops.logmux import LogLine

NOW = 1_000_000.0
ROWS = [
    ComponentRow("db", "healthy", "127.0.0.1:5432", "pid 100", NOW - 7_500, 0, "SELECT 1 ok"),
    ComponentRow(
        "api", "restarting", "127.0.0.1:8000", "pid 4242", NOW - 184, 3, "GET /health 200", "app/routes.py"
    ),
    ComponentRow("worker", "crashed", "", "pid 77", NOW - 30, 1, "", "exit code 1"),
]
SHOW_CURSOR, HIDE_CURSOR = "\x1b[?25h", "\x1b[?25l"


def terminal(height: int = 30) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=120, height=height, record=True)


def rendered(renderable: object, height: int = 30) -> str:
    console = terminal(height)
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0 s"), (12.9, "12 s"), (60, "1 min"), (184, "3 min 4 s"), (7_500, "2 h 5 min"), (7_200, "2 h")],
)
def test_durations_read_like_a_person_would_say_them(seconds, shown):
    assert format_duration(seconds) == shown


def test_uptime_is_a_dash_when_not_running():
    assert uptime(ROWS[0], NOW) == "2 h 5 min"
    assert uptime(ROWS[2], NOW) == "—"
    assert uptime(ComponentRow("api", "starting"), NOW) == "—"


def test_table_shows_every_component_with_status_uptime_and_restarts():
    text = rendered(render_table(ROWS, NOW))
    for expected in ("db", "api", "worker", "healthy", "restarting", "crashed", "127.0.0.1:8000", "pid 4242"):
        assert expected in text
    assert "2 h 5 min" in text and "3 min 4 s" in text and "—" in text
    api_line = next(line for line in text.splitlines() if "api" in line)
    assert re.search(
        r"restarting\s+127\.0\.0\.1:8000\s+pid 4242\s+3 min 4 s\s+3\s+GET /health 200\s+app/routes", api_line
    )


def test_statuses_are_coloured():
    console = terminal()
    console.print(render_table(ROWS, NOW))
    html = console.export_html(inline_styles=True)
    assert "healthy" in html and "#008000" in html  # green
    assert "#800000" in html  # red, for crashed
    assert "#808000" in html  # yellow, for restarting


def test_live_view_shows_the_table_the_alert_and_the_last_log_lines():
    view = LiveView(terminal(), max_lines=5, clock=lambda: NOW)
    view.update(ROWS)
    view.log([LogLine("api", f"line {n}") for n in range(10)])
    view.say("api restarted in 0.21 s (app/routes.py)")
    view.alert("api: SyntaxError", "Traceback (most recent call last):\n  File app/routes.py\nSyntaxError")
    text = rendered(view)
    assert "restarting" in text and "SyntaxError" in text and "app/routes.py" in text
    assert "api     | line 9" in text and "dev     | api restarted in 0.21 s" in text
    assert "line 5" not in text  # only the last 5
    view.alert("api: SyntaxError", None)
    assert "Traceback" not in rendered(view)


def test_live_view_shows_the_apis_json_lines_readable_and_the_plain_view_keeps_them_raw():
    request = (
        '{"time": "2026-12-02T01:02:03.456Z", "level": "info", "logger": "homer.request", "method": "GET",'
        ' "route": "/search", "status": 200, "duration_ms": 3.21, "request_id": "0b6f2c1e"}'
    )
    failure = '{"time": "2026-12-02T01:02:04Z", "level": "error", "logger": "homer.app", "message": "boom",'
    failure += ' "exc_info": "Traceback (most recent call last):\\n  File x.py"}'
    lines = [LogLine("api", request), LogLine("api", failure), LogLine("db", "LOG:  checkpoint starting")]
    view = LiveView(terminal(), clock=lambda: NOW)
    view.update(ROWS)
    view.log(lines)
    text = rendered(view)
    assert "01:02:03.456 info  GET /search 200" in text and "id=0b6f2c1e" in text
    assert "homer.app: boom" in text and "Traceback" not in text  # a crash is the alert's to show
    assert '"route"' not in text and "db      | LOG:  checkpoint starting" in text
    out = io.StringIO()
    PlainView(out).log(lines)  # off a terminal (CI, a pipe): the JSON as it was written
    assert request in out.getvalue()


def test_live_view_fits_the_log_lines_to_the_terminal_height():
    view = LiveView(terminal(), max_lines=20, clock=lambda: NOW)
    view.update(ROWS)
    view.log([LogLine("api", f"line {n}") for n in range(20)])
    text = rendered(view, height=15)
    shown = [line for line in text.splitlines() if line.startswith("api     | ")]
    assert shown == [f"api     | line {n}" for n in range(11, 20)]  # 15 - 5 for the table - 1
    assert len(text.rstrip("\n").splitlines()) < 15
    view.alert("api: SyntaxError", "Traceback\nSyntaxError")  # a panel of 4 lines: 4 fewer log lines
    shown = [line for line in rendered(view, height=15).splitlines() if line.startswith("api     | ")]
    assert shown == [f"api     | line {n}" for n in range(15, 20)]


def test_live_view_filter_narrows_log_lines_not_rows():
    view = LiveView(terminal(), components_filter={"api"}, clock=lambda: NOW)
    view.update(ROWS)
    view.log([LogLine("db", "checkpoint starting"), LogLine("api", "GET /search 200")])
    view.say("watching app/")
    text = rendered(view)
    assert "GET /search 200" in text and "checkpoint starting" not in text and "watching app/" in text
    assert "SELECT 1 ok" in text  # db's row is still there


def test_live_view_starts_and_stops_and_shows_the_cursor_again():
    console = terminal()
    with LiveView(console, clock=lambda: NOW) as view:
        view.update(ROWS)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert HIDE_CURSOR in output and output.rindex(SHOW_CURSOR) > output.rindex(HIDE_CURSOR)
    assert "restarting" in output


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_live_view_restores_the_cursor_when_the_body_raises(error):
    console = terminal()
    with pytest.raises(type(error)), LiveView(console, clock=lambda: NOW) as view:
        view.update(ROWS)
        raise error
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert output.rindex(SHOW_CURSOR) > output.rindex(HIDE_CURSOR)


def test_plain_view_prints_plain_lines_and_each_change_once():
    stream = io.StringIO()
    with PlainView(stream) as view:
        view.update(ROWS)
        view.update(ROWS)  # nothing changed: nothing printed
        view.update([ROWS[0], ComponentRow("api", "healthy", "127.0.0.1:8000", "pid 4243"), ROWS[2]])
        view.log([LogLine("api", "GET /health 200"), LogLine("api", "\x1b[32mcoloured\x1b[0m")])
        view.say("api restarted in 0.21 s (app/routes.py)")
        view.alert("api: SyntaxError", "Traceback\nSyntaxError: invalid syntax")
        view.alert("api: SyntaxError", "Traceback\nSyntaxError: invalid syntax")
        view.alert("api: SyntaxError", None)
    out = stream.getvalue()
    assert "\x1b" not in out
    assert out.splitlines() == [
        "dev     | db: healthy (pid 100, 127.0.0.1:5432)",
        "dev     | api: restarting (pid 4242, 127.0.0.1:8000); app/routes.py",
        "dev     | worker: crashed (pid 77); exit code 1",
        "dev     | api: healthy (pid 4243, 127.0.0.1:8000)",
        "api     | GET /health 200",
        "api     | coloured",
        "dev     | api restarted in 0.21 s (app/routes.py)",
        "dev     | ! api: SyntaxError",
        "dev     |   Traceback",
        "dev     |   SyntaxError: invalid syntax",
        "dev     | api: SyntaxError: cleared",
    ]


def test_plain_view_filter_and_long_names():
    stream = io.StringIO()
    view = PlainView(stream, components_filter={"indexer-service"})
    view.log([LogLine("api", "hidden"), LogLine("indexer-service", "shown")])
    view.say("event")
    assert stream.getvalue().splitlines() == ["indexer-service | shown", "dev             | event"]


def test_plain_view_widens_its_column_for_the_rows_it_is_given():
    stream = io.StringIO()
    view = PlainView(stream)
    view.update([ComponentRow("indexer-service", "starting")])
    view.log([LogLine("api", "ok")])
    assert stream.getvalue().splitlines() == [
        "dev             | indexer-service: starting",
        "api             | ok",
    ]


def test_status_line_without_details():
    assert status_line(ComponentRow("migrate", "stopped")) == "migrate: stopped"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_make_view_picks_live_on_a_terminal_and_plain_otherwise():
    assert isinstance(make_view(Tty(), None, env={"TERM": "xterm-256color"}), LiveView)
    assert isinstance(make_view(Tty(), None, env={"TERM": "dumb"}), PlainView)
    assert isinstance(make_view(io.StringIO(), None, env={"TERM": "xterm"}), PlainView)
    live = make_view(Tty(), {"api", "db"}, env={})
    assert isinstance(live, LiveView) and live.components_filter == {"api", "db"}
