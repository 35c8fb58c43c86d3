"""`invoke ci-merge`: the shards' JUnit files and step tables as one, and each way shards are not whole."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from ops import junit
from ops.artifacts import ArtifactWriter
from ops.ci_merge import merge, run
from ops.errors import ChecksFailed, UsageError
from ops.shards import Shard

STEP = {"name": "tests", "status": "OK", "attempts": 1, "started_at": "T0", "duration_s": 1.5, "detail": ""}


def junit_xml(cases: dict[str, str]) -> str:
    """A pytest-like JUnit file: one suite, a testcase per `classname::name`, "fail" cases failed."""
    body = "".join(
        f'<testcase classname="{case.split("::")[0]}" name="{case.split("::")[1]}" time="0.5">'
        + ('<failure message="assert 1 == 2">boom</failure>' if outcome == "fail" else "")
        + "</testcase>"
        for case, outcome in cases.items()
    )
    failures = sum(outcome == "fail" for outcome in cases.values())
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
        f'<testsuite name="pytest" errors="0" failures="{failures}" skipped="0" tests="{len(cases)}"'
        f' time="{0.5 * len(cases):.3f}">{body}</testsuite></testsuites>'
    )


def write_shard(folder: Path, shard: Shard, cases: dict[str, str], failed_step: str | None = None) -> None:
    """What `invoke ci --shard` leaves: steps-KofN.json and junit-KofN.xml, through the same writer."""
    writer = ArtifactWriter(folder, [], shard)
    writer.prepare()
    ledger = {
        "stack": f"ci-abc-s{shard.label}",
        "shard": str(shard),
        "result": "failed" if failed_step else "passed",
        "failed_step": failed_step,
        "exit_code": 1 if failed_step else 0,
        "steps": [{**STEP, "status": "FAIL" if failed_step else "OK"}],
    }
    writer.json("steps.json", ledger)
    writer.text("junit.xml", junit_xml(cases))


SHARD_CASES = {
    1: {"tests.unit.test_a::test_one": "pass", "tests.unit.test_a::test_two[x|y]": "pass"},
    2: {"tests.unit.test_b::test_three": "pass"},
    3: {"tests.e2e.test_c::test_four": "pass", "tests.e2e.test_c::test_five": "pass"},
}


def test_three_passing_shards_become_one_junit_file_and_one_summary(tmp_path):
    downloaded = tmp_path / "shards"
    for k, cases in SHARD_CASES.items():  # as download-artifact puts them: a folder per artifact
        write_shard(downloaded / f"ci-artifacts-shard-{k}of3", Shard(k, 3), cases)
    summary = tmp_path / "github-step-summary.md"
    merged = run(downloaded, tmp_path / "merged", {"GITHUB_STEP_SUMMARY": str(summary)})

    assert merged.problems == [] and [str(r.shard) for r in merged.runs] == ["1/3", "2/3", "3/3"]
    root = junit.read(tmp_path / "merged" / "junit.xml")
    assert root is not None and root.tag == "testsuites"
    assert sorted(junit.case_ids(root)) == sorted(case for cases in SHARD_CASES.values() for case in cases)
    assert junit.totals(root) == junit.Totals(tests=5, time=2.5)
    assert root.get("tests") == "5" and root.get("failures") == "0"
    assert [suite.get("name") for suite in junit.suites(root)] == [f"pytest (shard {k}/3)" for k in (1, 2, 3)]

    text = (tmp_path / "merged" / "summary.md").read_text()
    assert text.startswith("## invoke ci — 3 shards merged\n\n**PASSED**: 5 tests, 0 failures, 0 errors")
    assert "| 2/3 | passed | `ci-abc-s2of3` | 1 | 0 | 0 | 0 | 0.5 s |" in text
    assert "| **all** | | | 5 | 0 | 0 | 0 | 2.5 s |" in text
    assert text.count("| `tests` | OK |") == 3 and "### shard 3/3 — `ci-abc-s3of3`" in text
    assert summary.read_text() == text + "\n"
    assert merged.verdict_line() == "3 shards, 5 tests, 0 failures, 0 errors, 0 skipped"


def test_the_shards_may_also_lie_in_one_folder(tmp_path):
    for k, cases in SHARD_CASES.items():  # their names do not clash
        write_shard(tmp_path / "all", Shard(k, 3), cases)
    assert merge(tmp_path / "all").problems == []


def test_a_failed_and_a_missing_shard_fail_the_merge_after_it_wrote_everything(tmp_path):
    downloaded = tmp_path / "shards"
    write_shard(downloaded / "one", Shard(1, 3), SHARD_CASES[1])
    write_shard(downloaded / "two", Shard(2, 3), {"tests.unit.test_b::test_three": "fail"}, "tests")
    with pytest.raises(ChecksFailed) as caught:
        run(downloaded, tmp_path / "merged", {})
    line = caught.value.one_line()
    assert caught.value.exit_code == 1 and "\n" not in line
    assert "shard 3/3 has no artifacts" in line and "shard 2/3 failed at step `tests` (exit 1)" in line
    text = (tmp_path / "merged" / "summary.md").read_text()
    assert "**FAILED**: 3 tests, 1 failures" in text and "- shard 3/3 has no artifacts" in text
    assert "| 2/3 | **failed** at `tests` |" in text
    assert "Failed tests (1):\n\n- `tests.unit.test_b::test_three` (shard 2/3)" in text
    assert junit.totals(junit.read(tmp_path / "merged" / "junit.xml")).failures == 1


def test_shards_of_different_splits_or_twice_the_same_are_not_one_run(tmp_path):
    write_shard(tmp_path / "mixed" / "a", Shard(1, 2), SHARD_CASES[1])
    write_shard(tmp_path / "mixed" / "b", Shard(2, 3), SHARD_CASES[2])
    assert merge(tmp_path / "mixed").problems == ["the shards come from different splits (N=2, N=3)"]
    write_shard(tmp_path / "twice" / "a", Shard(1, 2), SHARD_CASES[1])
    write_shard(tmp_path / "twice" / "b", Shard(1, 2), SHARD_CASES[1])
    problems = merge(tmp_path / "twice").problems
    assert "shard 1/2 appears 2 times" in problems and "shard 2/2 has no artifacts" in problems


def test_nothing_to_merge_or_an_unreadable_ledger_is_said(tmp_path):
    (tmp_path / "empty").mkdir()
    assert merge(tmp_path / "empty").problems == [
        f"no steps.json or steps-KofN.json under {tmp_path / 'empty'}"
    ]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "steps-1of1.json").write_text("{not json")
    assert merge(tmp_path / "bad").problems == ["steps-1of1.json cannot be read (JSONDecodeError)"]
    (tmp_path / "bad" / "steps-1of1.json").write_text('{"shard": "2/1", "stack": "ci-x"}')
    assert merge(tmp_path / "bad").problems == ["steps-1of1.json cannot be read (UsageError)"]
    (tmp_path / "bad" / "steps-1of1.json").write_text("[]")
    assert merge(tmp_path / "bad").problems == ["steps-1of1.json cannot be read (AttributeError)"]
    with pytest.raises(UsageError, match="is not a folder"):
        merge(tmp_path / "nope")


def test_a_shard_whose_tests_did_not_run_has_no_junit_row(tmp_path):
    write_shard(tmp_path, Shard(1, 1), {})
    (tmp_path / "junit-1of1.xml").unlink()
    merged = merge(tmp_path)
    assert merged.problems == [] and merged.runs[0].junit is None
    assert "| 1/1 | passed | `ci-abc-s1of1` | no JUnit XML |" in merged.summary
    assert ElementTree.tostring(merged.junit).startswith(b"<testsuites")
