"""Following several logs: complete new lines, redacted, across late files, rotation and truncation."""

from __future__ import annotations

from pathlib import Path

from ops.logmux import LogFollower, LogLine, colour_of, follow, prefix, prefix_width


def append(path: Path, data: bytes | str) -> None:
    with open(path, "ab") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def texts(lines: list[LogLine]) -> list[str]:
    return [line.text for line in lines]


def test_starts_at_the_end_and_returns_only_appended_lines(tmp_path):
    api = tmp_path / "api.log"
    api.write_text("before 1\nbefore 2\n")
    follower = LogFollower({"api": api}, [])
    assert follower.poll() == []
    append(api, "GET /health 200\nGET /search 200\n")
    assert follower.poll() == [LogLine("api", "GET /health 200"), LogLine("api", "GET /search 200")]
    assert follower.poll() == []


def test_several_components_are_tagged_with_their_name(tmp_path):
    db, api = tmp_path / "db.log", tmp_path / "api.log"
    db.write_text("")
    api.write_text("")
    follower = LogFollower({"db": db, "api": api}, [])
    append(db, "checkpoint\n")
    append(api, "started\n")
    assert set(follower.poll()) == {LogLine("db", "checkpoint"), LogLine("api", "started")}
    assert follower.components == ("db", "api")
    assert follower.paths == {"db": db, "api": api}


def test_a_partial_last_line_waits_for_its_newline(tmp_path):
    log = tmp_path / "api.log"
    log.write_text("")
    follower = LogFollower({"api": log}, [])
    append(log, "first\nsec")
    assert texts(follower.poll()) == ["first"]
    append(log, "ond hal")
    assert follower.poll() == []
    append(log, "f\r\n")
    assert texts(follower.poll()) == ["second half"]


def test_a_file_created_later_is_read_from_its_start(tmp_path):
    log = tmp_path / "worker.log"
    follower = LogFollower({"worker": log}, [])
    assert follower.poll() == []
    log.write_text("hello\n")
    assert texts(follower.poll()) == ["hello"]


def test_rotation_by_replace_finishes_the_old_file_then_reads_the_new_from_zero(tmp_path):
    log = tmp_path / "api.log"
    log.write_text("old 1\n")
    follower = LogFollower({"api": log}, [])
    append(log, "old 2\nold partial")
    assert texts(follower.poll()) == ["old 2"]
    append(log, " line\nold 3\n")  # written just before the rotation, not yet read
    log.replace(log.with_name(log.name + ".1"))
    log.write_text("new 1\n")
    assert texts(follower.poll()) == ["old partial line", "old 3", "new 1"]
    append(log, "new 2\n")
    assert texts(follower.poll()) == ["new 2"]


def test_a_gap_between_rotation_and_the_new_file_loses_nothing(tmp_path):
    log = tmp_path / "api.log"
    log.write_text("")
    follower = LogFollower({"api": log}, [])
    append(log, "last words")
    log.replace(log.with_name(log.name + ".1"))
    assert texts(follower.poll()) == ["last words"]  # the old file is finished: its partial line too
    log.write_text("reborn\n")
    assert texts(follower.poll()) == ["reborn"]


def test_truncation_starts_again_from_zero(tmp_path):
    log = tmp_path / "db.log"
    log.write_text("a fairly long first line\nand a second one\n")
    follower = LogFollower({"db": log}, [])
    log.write_text("short\n")  # same inode, smaller than the offset
    assert texts(follower.poll()) == ["short"]


def test_secrets_are_redacted(tmp_path):
    log = tmp_path / "api.log"
    log.write_text("")
    follower = LogFollower({"api": log}, ["hunter2"])
    append(log, "connecting with hunter2\npostgresql://homer:s3cret@127.0.0.1/homer\n")
    lines = texts(follower.poll())
    assert lines == ["connecting with ***", "postgresql://homer:***@127.0.0.1/homer"]


def test_bytes_that_are_not_utf8_are_replaced(tmp_path):
    log = tmp_path / "api.log"
    log.write_text("")
    follower = LogFollower({"api": log}, [])
    append(log, b"caf\xe9 \xff\n" + "μῆνιν\n".encode())
    assert texts(follower.poll()) == ["caf\ufffd \ufffd", "μῆνιν"]


def test_a_multibyte_character_split_across_writes_survives(tmp_path):
    log = tmp_path / "api.log"
    log.write_text("")
    follower = LogFollower({"api": log}, [])
    encoded = "ἄειδε\n".encode()
    append(log, encoded[:2])
    assert follower.poll() == []
    append(log, encoded[2:])
    assert texts(follower.poll()) == ["ἄειδε"]


def test_components_can_be_added_and_removed(tmp_path):
    api, worker = tmp_path / "api.log", tmp_path / "worker.log"
    api.write_text("")
    worker.write_text("already there\n")
    follower = LogFollower({"api": api}, [])
    follower.add("worker", worker)  # from its end
    append(worker, "one\n")
    assert follower.poll() == [LogLine("worker", "one")]
    follower.remove("worker")
    append(worker, "two\n")
    append(api, "still here\n")
    assert follower.poll() == [LogLine("api", "still here")]
    follower.add("worker", worker, from_start=True)
    assert texts(follower.poll()) == ["already there", "one", "two"]
    follower.remove("nothing")  # unknown: no error


def test_follow_yields_lines_and_stops_when_stop_is_true(tmp_path):
    log = tmp_path / "api.log"
    log.write_text("")
    follower = LogFollower({"api": log}, [])
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            append(log, "a\nb\n")
        return calls["n"] > 3

    assert texts(list(follow(follower, stop, poll_s=0))) == ["a", "b"]
    assert calls["n"] == 4


def test_prefix_pads_the_name_and_colours_it_only_when_asked():
    assert prefix("api", 8, colour=False) == "api     | "
    assert prefix("migrate", 8, colour=False) == "migrate | "
    assert "\x1b" not in prefix("worker", 8, colour=False)
    coloured = prefix("api", 8, colour=True)
    assert coloured.startswith("\x1b[") and coloured.endswith("| ") and "api     " in coloured
    assert prefix_width(["db", "api", "migrate"]) == 8
    assert prefix_width([], minimum=4) == 4


def test_colours_are_fixed_for_the_stack_and_stable_for_other_names():
    assert (colour_of("db"), colour_of("api"), colour_of("migrate")) == ("cyan", "magenta", "yellow")
    assert colour_of("worker") == colour_of("worker")
    assert prefix("worker", 8, True) == prefix("worker", 8, True)
