"""Fingerprints name the file that changed and reuse unchanged hashes; the critical path is the
chain of steps that made a command last as long as it did."""

from __future__ import annotations

import os

from ops.fingerprint import Fingerprint, take, what_changed
from ops.steps import OK, SKIP, Step, critical_path, describe_path


def test_an_edit_is_named_and_the_declaration_is_part_of_the_print(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("a = 1\n")
    (tmp_path / "app" / "routes.py").write_text("b = 2\n")
    (tmp_path / "app" / "__pycache__").mkdir()
    (tmp_path / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    first = take(tmp_path, {"app": "app.main:app"}, ["app"])
    assert sorted(first.files) == ["app/main.py", "app/routes.py"]  # caches are not inputs
    assert what_changed(first, take(tmp_path, {"app": "app.main:app"}, ["app"], first)) is None

    (tmp_path / "app" / "routes.py").write_text("b = 3\n")
    (tmp_path / "app" / "new.py").write_text("")
    now = take(tmp_path, {"app": "app.main:app"}, ["app"], first)
    assert what_changed(first, now) == "app/routes.py changed; app/new.py added"
    other = take(tmp_path, {"app": "other:app"}, ["app"], now)
    assert what_changed(now, other) == "its declaration or settings changed"
    assert Fingerprint.from_record(now.as_record()) == now


def test_a_file_whose_size_and_mtime_are_unchanged_is_not_read_again(tmp_path):
    source = tmp_path / "worker.py"
    source.write_text("x = 1\n")
    first = take(tmp_path, {}, ["worker.py"])
    stat = source.stat()
    source.write_text("y = 2\n")  # same size
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime
    assert take(tmp_path, {}, ["worker.py"], first).digest == first.digest  # trusted, as git's index does
    assert take(tmp_path, {}, ["worker.py"]).digest != first.digest  # read afresh, it differs


def step(name: str, offset: float, duration: float, status: str = OK) -> Step:
    return Step(name, status=status, offset_s=offset, duration_s=duration)


def test_the_critical_path_follows_the_branch_that_ended_last():
    steps = [
        step("db", 0.0, 1.0),
        step("api-start", 0.01, 0.02),
        step("db-ready", 1.0, 0.01),
        step("migrate", 1.01, 0.05),
        step("api-health", 1.06, 0.09),
        step("seed", 1.06, 0.0, SKIP),
    ]
    chain = critical_path(steps)
    assert [s.name for s in chain] == ["db", "db-ready", "migrate", "api-health"]
    assert describe_path(chain).startswith("critical path 1.15 s: db @0.00 (+1.00 s) -> db-ready")


def test_when_the_api_is_slower_than_the_database_its_import_is_the_path():
    steps = [
        step("db", 0.0, 0.2),
        step("migrate", 0.2, 0.05),
        step("api-start", 0.0, 0.01),
        step("api-health", 0.25, 0.6),
    ]
    assert [s.name for s in critical_path(steps)] == ["db", "migrate", "api-health"]
    assert critical_path([]) == []
