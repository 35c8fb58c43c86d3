"""The GitHub Actions workflow: pinned actions, least permissions, bounded, artifacts always uploaded."""

from __future__ import annotations

import re

from tests.helpers import PROJECT_DIR

WORKFLOW = (PROJECT_DIR / ".github" / "workflows" / "ci.yml").read_text()


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version():
    uses = re.findall(r"uses:\s*(\S+)(.*)", WORKFLOW)
    assert {ref.split("@")[0] for ref, _ in uses} == {
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
    }
    for ref, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
        assert re.search(r"# v\d+\.\d+\.\d+", comment), f"{ref} has no version comment"


def test_least_permissions_a_time_limit_and_one_run_per_ref():
    assert re.search(r"^permissions:\n  contents: read\n", WORKFLOW, re.M)
    assert re.search(r"^\s+timeout-minutes: \d+$", WORKFLOW, re.M)
    assert re.search(r"^concurrency:\n  group: .+\n  cancel-in-progress: true$", WORKFLOW, re.M)
    assert "persist-credentials: false" in WORKFLOW


def test_it_runs_invoke_ci_and_always_uploads_the_artifacts():
    assert 'python-version: "3.11"' in WORKFLOW
    assert "pip install -e '.[dev]'" in WORKFLOW
    assert re.search(r"run: invoke ci$", WORKFLOW, re.M)
    upload = WORKFLOW[WORKFLOW.index("Upload artifacts") :]
    assert "if: always()" in upload and "path: artifacts/" in upload


def test_a_quick_benchmark_runs_after_the_tests_and_lands_in_the_artifacts():
    assert WORKFLOW.index("run: invoke ci") < WORKFLOW.index("run: invoke bench --quick")
    assert WORKFLOW.index("run: invoke bench --quick") < WORKFLOW.index("path: artifacts/")
