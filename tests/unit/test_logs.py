"""Following logs: new lines only, redacted, across rotation."""

from ops.logs import follow


def test_follow_yields_new_redacted_lines_and_survives_truncation(tmp_path):
    log = tmp_path / "api.log"
    log.write_text("old line\n")
    writes = iter(
        [
            lambda: log.write_text(log.read_text() + "GET /health 200\npassword=hunter2\n"),
            lambda: log.write_text("after rotation\n"),
        ]
    )
    rounds = {"n": 0}

    def stop() -> bool:
        rounds["n"] += 1
        action = next(writes, None)
        if action is not None:
            action()
        return rounds["n"] > 4

    lines = list(follow([log], ["hunter2"], stop=stop, poll=0))
    assert lines == ["GET /health 200", "password=***", "after rotation"]
