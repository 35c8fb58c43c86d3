"""GitHub Actions output (groups, error annotations, step summary) and the markdown step table."""

from __future__ import annotations

import pytest

from ops.errors import ApiError
from ops.step_report import (
    GitHubAnnotations,
    NoHooks,
    StepRecord,
    append_step_summary,
    escape_data,
    escape_property,
    hooks_for,
    summary_markdown,
    summary_table,
)
from ops.steps import Ledger


def run_steps(hooks):
    """Three steps (OK, SKIP, FAIL) through a ledger; returns the lines it printed."""
    lines: list[str] = []
    ledger = Ledger(emit=lines.append, hooks=hooks(lines.append) if callable(hooks) else hooks)
    with ledger.step("db"):
        lines.append("starting postgres")
    with ledger.step("migrate") as step:
        step.skip("already at head")
    with pytest.raises(ApiError), ledger.step("api-health"):
        raise ApiError("uvicorn exited with code 1\nModuleNotFoundError: x", "see 50% of api.log")
    return lines


def test_annotations_group_each_step_and_mark_the_failure():
    lines = run_steps(GitHubAnnotations)
    assert lines == [
        "::group::db",
        "starting postgres",
        "::endgroup::",
        "::STEP::db::OK",
        "::group::migrate",
        "::endgroup::",
        "::STEP::migrate::SKIP",
        "::group::api-health",
        "::endgroup::",
        "::error title=step api-health failed::uvicorn exited with code 1 ModuleNotFoundError: x"
        " — see 50%25 of api.log",
        "::STEP::api-health::FAIL",
    ]


def test_without_github_actions_only_the_plain_step_lines_are_printed():
    lines = run_steps(None)
    assert lines == [
        "starting postgres",
        "::STEP::db::OK",
        "::STEP::migrate::SKIP",
        "::STEP::api-health::FAIL",
    ]


def test_hooks_follow_the_environment():
    assert isinstance(hooks_for(print, {"GITHUB_ACTIONS": "true"}), GitHubAnnotations)
    assert hooks_for(print, {}) is None
    assert hooks_for(print, {"GITHUB_ACTIONS": "false"}) is None


def test_an_error_annotation_never_shows_a_secret():
    lines: list[str] = []
    ledger = Ledger(emit=lines.append, hooks=GitHubAnnotations(lines.append, ["s3cr3t-pw"]))
    with pytest.raises(ApiError), ledger.step("api-health"):
        raise ApiError("could not connect to postgresql://homer:other-pw@127.0.0.1:5432/homer with s3cr3t-pw")
    error = next(line for line in lines if line.startswith("::error"))
    assert "s3cr3t-pw" not in error and "other-pw" not in error and "***" in error


def test_workflow_command_escaping():
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"


def test_a_record_keeps_steps_of_several_ledgers_and_passes_them_on():
    lines: list[str] = []
    record = StepRecord(GitHubAnnotations(lines.append))
    for name in ("db", "tests"):
        with Ledger(emit=lines.append, hooks=record).step(name):
            pass
    assert [step.name for step in record.steps] == ["db", "tests"]
    assert record.failed is None
    assert lines.count("::endgroup::") == 2
    assert record.as_dicts()[1]["status"] == "OK"


def test_no_hooks_prints_nothing_more():
    lines = run_steps(NoHooks())
    assert not any(line.startswith(("::group::", "::endgroup::", "::error")) for line in lines)


STEPS = [
    {
        "name": "db",
        "status": "OK",
        "attempts": 1,
        "started_at": "T0",
        "duration_s": 0.35,
        "detail": "started",
    },
    {
        "name": "api-health",
        "status": "FAIL",
        "attempts": 7,
        "started_at": "T1",
        "duration_s": 1.2,
        "detail": "uvicorn exited | code 1\nsee api.log",
    },
    {
        "name": "tests",
        "status": "SKIP",
        "attempts": 1,
        "started_at": "T2",
        "duration_s": 0,
        "detail": "x" * 500,
    },
]


def test_summary_table_has_a_row_per_step_with_pipes_and_newlines_escaped():
    table = summary_table(STEPS).splitlines()
    assert table[0] == "| step | status | attempts | started | duration | detail |"
    assert table[1].startswith("| --- |")
    assert table[2] == "| `db` | OK | 1 | T0 | 0.35 s | started |"
    assert table[3] == "| `api-health` | **FAIL** | 7 | T1 | 1.20 s | uvicorn exited \\| code 1 see api.log |"
    assert table[4].endswith("… |") and len(table[4]) < 400
    assert len(table) == 5


def test_summary_markdown_and_the_github_step_summary_file(tmp_path):
    text = summary_markdown("invoke ci", "**FAILED** at step `api-health`", STEPS, ["artifacts: artifacts/"])
    assert text.startswith("## invoke ci\n\n**FAILED** at step `api-health`\n\n| step |")
    assert text.rstrip().endswith("- artifacts: artifacts/")
    target = tmp_path / "summary.md"
    assert append_step_summary(text, {"GITHUB_STEP_SUMMARY": str(target)}) == target
    append_step_summary(text, {"GITHUB_STEP_SUMMARY": str(target)})
    assert target.read_text().count("## invoke ci") == 2  # appended, as GitHub expects
    assert append_step_summary(text, {}) is None
