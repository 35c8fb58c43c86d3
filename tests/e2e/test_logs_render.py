"""`invoke logs -c api`: the API's JSON lines made readable on a terminal, other lines as they are;
`--json` (and a pipe) pass the lines through as written."""

from __future__ import annotations

import json

import pytest

from tests.support.project import Project
from tests.support.terminal import on_terminal

pytestmark = pytest.mark.e2e

REQUEST = {
    "time": "2026-12-01T18:09:15.123Z",
    "level": "info",
    "logger": "homer.request",
    "message": "request",
    "request_id": "ab12cd34ef56",
    "method": "GET",
    "route": "/search",
    "status": 200,
    "duration_ms": 3.2071,
    "mode": "text",
    "count": 10,
}
FAILED = {
    "time": "2026-12-01T18:09:16.004Z",
    "level": "error",
    "logger": "homer.app",
    "message": "database unavailable",
    "request_id": "ff00",
    "exc_info": 'Traceback (most recent call last):\n  File "x.py"\nOperationalError: gone',
}
PLAIN = "INFO:     Started server process [4242]"


@pytest.fixture
def api_log(project: Project) -> list[str]:
    lines = [json.dumps(REQUEST), json.dumps(FAILED), PLAIN, '{"not": "a log record"']
    logs = project.root / ".ops" / "logs"
    logs.mkdir(parents=True)
    (logs / "api.log").write_text("\n".join(lines) + "\n")
    return lines


def test_a_terminal_sees_readable_lines_and_plain_ones_as_they_are(project: Project, api_log):
    code, shown = on_terminal(project, "logs", "-c", "api")
    assert code == 0, shown
    lines = shown.splitlines()
    assert lines[0] == "18:09:15.123 info  GET /search 200 3.21 ms  mode=text count=10  id=ab12cd34ef56"
    assert lines[1].startswith("18:09:16.004 ") and "error" in lines[1]  # coloured red
    assert lines[1].endswith("homer.app: database unavailable  id=ff00")
    assert lines[2:5] == ["Traceback (most recent call last):", '  File "x.py"', "OperationalError: gone"]
    assert lines[5:] == [PLAIN, api_log[3]]


def test_json_on_a_terminal_and_a_pipe_pass_the_lines_through(project: Project, api_log):
    code, shown = on_terminal(project, "logs", "-c", "api", "--json")
    assert code == 0 and shown.splitlines() == api_log
    assert json.loads(shown.splitlines()[0]) == REQUEST  # for jq
    piped = project.invoke("logs", "-c", "api")
    assert piped.returncode == 0 and piped.stdout.splitlines() == api_log
