"""`invoke ci --shard K/3` end to end: three real runs, each on a stack of its own, run a real test
folder's tests exactly once between them; `invoke ci-merge` joins their artifacts; a bad --shard
starts nothing.

As in test_ci.py, the runs happen in a temporary copy of the project, and the suite is a folder
written into the copy: two of the project's own fast unit test files.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from ops import junit
from tests.support.collect import collected_ids, junit_id
from tests.support.paths import PROJECT_DIR
from tests.support.stacks import leftovers

pytestmark = pytest.mark.e2e

SUITE = ("tests/unit/test_folding.py", "tests/unit/test_secrets.py")  # need only app/ and ops/


def test_three_shards_run_every_test_once_and_merge_into_one_run(ci_project):
    folder = ci_project.root / "ci_suite"
    folder.mkdir()
    for path in SUITE:
        shutil.copy(PROJECT_DIR / path, folder)
    collected = collected_ids(ci_project.root, "ci_suite", env=ci_project.env)
    assert len(collected) > 20

    for k in (1, 2, 3):  # the last one also records its tests' durations
        flags = ["--store-durations"] if k == 3 else []
        run = ci_project.invoke(
            "ci", "--shard", f"{k}/3", "--tests", "ci_suite", "--backend", "embedded", *flags, timeout=300
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"[pytest-split] Running group {k}/3" in run.stdout

    artifacts = ci_project.root / "artifacts"
    ran: dict[int, list[str]] = {}
    for k in (1, 2, 3):  # side by side in one folder: every name carries its shard
        ledger = json.loads((artifacts / f"steps-{k}of3.json").read_text())
        assert ledger["shard"] == f"{k}/3" and ledger["result"] == "passed"
        assert ledger["stack"].startswith("ci-") and ledger["stack"].endswith(f"-s{k}of3")
        assert (artifacts / f"summary-{k}of3.md").is_file() and (
            artifacts / f"logs-{k}of3" / "api.log"
        ).is_file()
        root = junit.read(artifacts / f"junit-{k}of3.xml")
        assert root is not None
        ran[k] = junit.case_ids(root)
        assert ran[k], f"shard {k}/3 ran nothing"
    assert Counter(case for cases in ran.values() for case in cases) == Counter(map(junit_id, collected))
    assert not (artifacts / "junit.xml").exists() and not (artifacts / "steps.json").exists()

    stored = json.loads((ci_project.root / ".test_durations").read_text())
    by_case = {junit_id(nodeid): nodeid for nodeid in collected}
    assert {by_case[case] for case in ran[3]} <= set(stored)
    assert not {by_case[case] for case in ran[1]} & set(stored)  # only the tests that ran are recorded

    merged = ci_project.invoke("ci-merge", "artifacts", "--out", "merged")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    root = junit.read(ci_project.root / "merged" / "junit.xml")
    assert root is not None and sorted(junit.case_ids(root)) == sorted(map(junit_id, collected))
    summary = (ci_project.root / "merged" / "summary.md").read_text()
    assert f"**PASSED**: {len(collected)} tests, 0 failures" in summary
    assert merged.stdout.strip() == f"3 shards, {len(collected)} tests, 0 failures, 0 errors, 0 skipped"
    assert leftovers(ci_project) == []


def test_a_bad_shard_is_one_line_exit_2_and_starts_nothing(ci_project):
    for shard in ("4/3", "0/3", "x", "1/0"):
        result = ci_project.invoke("ci", "--shard", shard, "--backend", "embedded")
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith(f"error: --shard {shard!r}") and result.stderr.count("\n") == 1
        assert "e.g. --shard 2/3" in result.stderr and "Traceback" not in result.stderr
        assert "::STEP::" not in result.stdout
        assert not (ci_project.root / ".ops").exists() and not (ci_project.root / "artifacts").exists()
