"""`--shard K/N`: parsed or refused in one line, and what it names: pytest-split's flags, stack, files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ops.artifacts import ArtifactWriter
from ops.ci import CiOptions, isolated_flags, pytest_command, stack_name
from ops.errors import UsageError
from ops.settings import build_settings
from ops.shards import DURATIONS_FILE, Shard, artifact_name, parse, pytest_args
from tests.support.paths import PROJECT_DIR


@pytest.mark.parametrize(
    ("text", "shard"), [("1/1", Shard(1, 1)), ("2/3", Shard(2, 3)), (" 3/3 ", Shard(3, 3))]
)
def test_k_of_n_is_parsed(text, shard):
    assert parse(text) == shard
    assert str(parse(text)) == text.strip()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("4/3", "K must be 1 to 3"),
        ("0/3", "K must be 1 to 3"),
        ("1/0", "N must be 1 to 99"),
        ("1/100", "N must be 1 to 99"),
        ("x", "is not K/N"),
        ("2of3", "is not K/N"),
        ("-1/3", "is not K/N"),
        ("", "is not K/N"),
        ("٢/٣", "is not K/N"),  # Arabic-Indic digits: int() would take them, the flag does not
    ],
)
def test_a_bad_shard_is_one_line_usage_error(text, says):
    with pytest.raises(UsageError) as caught:
        parse(text)
    line = caught.value.one_line()
    assert says in line and "\n" not in line and "e.g. --shard 2/3" in line
    assert caught.value.exit_code == 2


def test_a_shard_names_every_file_with_k_of_n():
    shard = Shard(2, 3)
    assert shard.label == "2of3"
    assert artifact_name("junit.xml", shard) == "junit-2of3.xml"
    assert artifact_name("steps.json", shard) == "steps-2of3.json"
    assert artifact_name("logs/api.log", shard) == "logs-2of3/api.log"
    assert artifact_name("logs", shard) == "logs-2of3"
    assert artifact_name("logs/api.log", None) == "logs/api.log"


def test_pytest_split_flags_only_with_a_shard_or_when_storing(tmp_path):
    assert pytest_args(None, tmp_path) == []
    durations = f"--durations-path={tmp_path / DURATIONS_FILE}"
    args = pytest_args(Shard(2, 3), tmp_path)
    assert args[0] == durations and "--splits=3" in args and "--group=2" in args
    assert "--store-durations" not in args
    assert pytest_args(None, tmp_path, store_durations=True) == [durations, "--store-durations"]


def test_the_tests_step_runs_pytest_with_the_shards_flags(tmp_path):
    plain = pytest_command(CiOptions("tests", tmp_path), PROJECT_DIR, tmp_path / "j.xml", tmp_path / "t")
    assert plain[1:4] == ["-m", "pytest", "tests"] and not any("--splits" in arg for arg in plain)
    sharded = pytest_command(
        CiOptions("tests", tmp_path, Shard(1, 2)), PROJECT_DIR, tmp_path / "j.xml", tmp_path / "t"
    )
    assert sharded[: len(plain)] == plain and sharded[len(plain) :] == pytest_args(Shard(1, 2), PROJECT_DIR)


def test_a_shards_stack_name_carries_it_and_stays_a_valid_name():
    assert stack_name({}, Shard(2, 3)).endswith("-s2of3")
    longest = {"GITHUB_RUN_ID": "9" * 30, "GITHUB_RUN_ATTEMPT": "12345"}
    name = stack_name(longest, Shard(99, 99))
    assert re.fullmatch(r"ci-9{10,}-1234-[0-9a-f]{6}-s99of99", name) and len(name) <= 40, name
    flags = isolated_flags(longest, Shard(99, 99))
    assert build_settings(PROJECT_DIR, flags=flags).stack == flags["stack"]  # fits the settings' pattern
    assert stack_name(longest).startswith("ci-" + "9" * 20 + "-1234")  # unsharded: as before


def test_a_shards_writer_names_its_files_and_clears_only_its_own(tmp_path: Path):
    for name in ("junit-1of3.xml", "junit.xml", "logs-2of3/api.log", "bench.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("old")
    writer = ArtifactWriter(tmp_path, [], Shard(2, 3))
    writer.prepare()
    writer.text("summary.md", "x")
    writer.text("logs/db.log", "y")
    assert writer.written == ["summary-2of3.md", "logs-2of3/db.log"]
    found = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file())
    assert found == ["bench.json", "junit-1of3.xml", "junit.xml", "logs-2of3/db.log", "summary-2of3.md"]
