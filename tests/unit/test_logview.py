"""`invoke logs -f` renders the API's JSON lines as they come (ops.logs.followed through ops.logview)."""

from __future__ import annotations

import json

from ops.logmux import LogFollower
from ops.logs import followed
from ops.logview import readable


def test_followed_lines_are_rendered_and_plain_ones_kept(tmp_path):
    log = tmp_path / "api.log"
    log.write_text("old line\n")
    follower = LogFollower({"api": log}, ["s3cret"])
    lines = followed(follower, {"api": log}, False, readable)
    record = {
        "time": "2026-12-01T00:00:01.500Z",
        "level": "warning",
        "logger": "uvicorn.error",
        "message": "s3cret",
    }
    with open(log, "a") as handle:
        handle.write(json.dumps(record) + "\nTraceback (most recent call last):\n")
    assert next(lines) == "00:00:01.500 warning uvicorn.error: ***"
    assert next(lines) == "Traceback (most recent call last):"
