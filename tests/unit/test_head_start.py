"""The head start of a cold `up` (ops.head_start): when it unpacks ahead, what it hands over, and
what it leaves behind (nothing). Packs of small trees stand in for the initdb template; the
unpacking is the real child interpreter's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops import cluster_pack, embedded_template, head_start

EMBEDDED = {"OPS_BACKEND": "embedded"}


@pytest.fixture(autouse=True)
def as_this_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A cache of the test's own; the files stay this user's (no service account needed)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(head_start, "service_account", lambda create=True: None)
    yield
    head_start.discard()


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A pack of a small tree at the embedded backend's template path."""
    tree = tmp_path / "tree"
    (tree / "global").mkdir(parents=True)
    (tree / "global" / "pg_control").write_bytes(b"control")
    (tree / "PG_VERSION").write_text("18\n")
    path = embedded_template.template(None)
    path.parent.mkdir(parents=True)
    cluster_pack.pack(tree, path)
    return path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    return directory


def begin(state: Path, env: dict[str, str] | None = None, **flags: str) -> None:
    env = {**(EMBEDDED if env is None else env), "OPS_STATE_DIR": str(state)}
    head_start.begin(state.parent, {}, env, flags)


def staged(state: Path) -> list[str]:
    return sorted(path.name for path in state.glob(f"{head_start.STAGING_PREFIX}*"))


def test_a_new_embedded_cluster_is_unpacked_ahead_and_moved_into_place(state, template):
    begin(state)
    assert staged(state) == [f"{head_start.STAGING_PREFIX}{os.getpid()}"]
    data_dir = state / "pgdata"
    data_dir.mkdir(mode=0o700)  # as initdb_cache.initialise prepares it
    assert head_start.claim(data_dir, template, None)
    assert (data_dir / "PG_VERSION").read_text() == "18\n"
    assert (data_dir / "global" / "pg_control").read_bytes() == b"control"
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert staged(state) == []
    assert not head_start.claim(data_dir, template, None)  # once


def test_a_head_start_for_another_directory_or_template_is_discarded_not_used(state, template, tmp_path):
    begin(state)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert not head_start.claim(elsewhere, template, None)
    assert list(elsewhere.iterdir()) == [] and staged(state) == []

    begin(state)
    other = template.with_name("other.pack")
    other.write_bytes(template.read_bytes())
    (state / "pgdata").mkdir()
    assert not head_start.claim(state / "pgdata", other, None)
    assert list((state / "pgdata").iterdir()) == [] and staged(state) == []


def test_a_template_replaced_after_the_unpack_began_is_not_trusted(state, template):
    begin(state)
    replaced = template.with_name("replacement")
    replaced.write_bytes(template.read_bytes())
    os.replace(replaced, template)  # another process rebuilt it: another inode
    (state / "pgdata").mkdir()
    assert not head_start.claim(state / "pgdata", template, None)
    assert list((state / "pgdata").iterdir()) == []


def test_a_failed_unpack_is_not_used(state, template):
    template.write_bytes(template.read_bytes()[:-3])  # cut short: the child fails
    begin(state)
    (state / "pgdata").mkdir()
    assert not head_start.claim(state / "pgdata", template, None)
    assert list((state / "pgdata").iterdir()) == [] and staged(state) == []


@pytest.mark.parametrize(
    ("env", "flags", "why"),
    [
        ({"OPS_BACKEND": "docker"}, {}, "another backend"),
        ({"OPS_BACKEND": "external"}, {}, "another backend"),
        ({}, {"backend": "docker"}, "a flag names another backend"),
        ({"OPS_BACKEND": "embedded"}, {"backend": "docker"}, "the flag wins over the environment"),
        ({"DOCKER_HOST": "tcp://127.0.0.1:2375"}, {}, "auto, and an engine may answer"),
    ],
)
def test_no_head_start_where_up_may_not_make_an_embedded_cluster(state, template, env, flags, why):
    begin(state, env, **flags)
    assert head_start._pending is None, why
    assert staged(state) == []


def test_no_head_start_for_a_stack_that_has_a_cluster_or_records_another_backend(state, template):
    (state / "pgdata").mkdir()
    begin(state)
    assert head_start._pending is None
    (state / "pgdata").rmdir()
    (state / "state.json").write_text('{"db": {"backend": "docker"}}')
    begin(state, {"DOCKER_HOST": "unix:///nonexistent.sock"})  # auto keeps what the stack has
    assert head_start._pending is None
    (state / "state.json").write_text("{broken")
    begin(state, {"DOCKER_HOST": ""})
    assert head_start._pending is None
    assert staged(state) == []


def test_no_head_start_without_a_template(state):
    begin(state)
    assert head_start._pending is None and staged(state) == []


def test_an_unclaimed_head_start_is_stopped_and_removed_with_the_state_dir_it_made(tmp_path, template):
    state = tmp_path / "new" / "state"
    begin(state)
    assert staged(state)
    head_start.discard()
    assert not state.exists()

    state.mkdir(parents=True)
    begin(state)
    head_start.discard()
    assert state.is_dir() and staged(state) == []  # not made by the head start: kept


def test_staging_directories_of_gone_ups_are_swept_and_a_live_ones_kept(state, template):
    argv = [sys.executable, "-c", "import os; print(os.getpid())"]
    gone = subprocess.run(argv, capture_output=True, text=True, check=True)
    dead = state / f"{head_start.STAGING_PREFIX}{gone.stdout.strip()}"
    live = state / f"{head_start.STAGING_PREFIX}{os.getppid()}"
    for leftover in (dead, live):
        (leftover / "base").mkdir(parents=True)
    begin(state)
    assert not dead.exists() and live.is_dir()
    assert f"{head_start.STAGING_PREFIX}{os.getpid()}" in staged(state)
