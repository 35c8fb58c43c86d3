"""`invoke ci` end to end: a passing run, an app that cannot import, unwritable artifacts, Ctrl-C.

Each run happens in a temporary copy of the project; the suite that `ci` runs is a tiny
test folder written into that copy (never `tests/`, which would recurse).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.output import in_branch_order
from tests.support.stacks import leftovers

pytestmark = pytest.mark.e2e

UP_STEPS = ["db", "db-ready", "migrate", "seed", "api-start", "api-health"]
ARTIFACTS = [
    "diagnose.json",
    "junit.xml",
    "logs/api.log",
    "logs/db.log",
    "logs/migrate.log",
    "steps.json",
    "summary.md",
    "versions.txt",
]

# Runs inside `invoke ci`, against its live stack: it checks the API, then leaks the stack's
# password into places the artifacts are made from (a JUnit property, the API's log), and
# keeps it in SECRET_OUT so that the outer test can look for it in every artifact.
LIVE_TEST = """
import glob, json, os
from pathlib import Path

import httpx


def test_the_live_api_answers(record_testsuite_property):
    assert httpx.get(os.environ["HOMER_API_URL"] + "/health", trust_env=False, timeout=5).status_code == 200
    [state_file] = glob.glob(".ops/ci-*/state.json")
    db = json.loads(Path(state_file).read_text())["db"]
    password, reader = db["password"], db["reader_password"]
    Path(os.environ["SECRET_OUT"]).write_text(password + "\\n" + reader)
    dsn = f"postgresql://{db['user']}:{password}@127.0.0.1:{db['port']}/{db['database']}"
    record_testsuite_property("dsn", dsn)
    record_testsuite_property("secret", password)
    record_testsuite_property("reader", reader)
    with open(Path(state_file).parent / "logs" / "api.log", "a") as log:
        log.write(f"leak: {dsn} PGPASSWORD={password} POSTGRES_PASSWORD={password} {password} {reader}\\n")
"""

# Runs inside `invoke ci`: it makes the artifacts folder unwritable in the middle of the run.
BLOCK_ARTIFACTS = """
import shutil
from pathlib import Path


def test_block_the_artifacts_folder():
    shutil.rmtree("artifacts")
    Path("artifacts").write_text("a file where the folder should be")
"""

# Runs inside `invoke ci`: it says it is running, then waits to be interrupted.
WAIT_FOR_CTRL_C = """
import os
import time
from pathlib import Path


def test_wait_for_ctrl_c():
    Path(os.environ["READY_OUT"]).write_text("running")
    time.sleep(120)
"""


def write_suite(project, name: str, source: str) -> str:
    folder = project.root / "ci_suite"
    folder.mkdir(exist_ok=True)
    (folder / f"test_{name}.py").write_text(source)
    return f"ci_suite/test_{name}.py"


def steps_of(project) -> dict:
    return json.loads((project.root / "artifacts" / "steps.json").read_text())


def test_a_passing_run_leaves_redacted_artifacts_and_no_stack(ci_project, tmp_path):
    summary = tmp_path / "github-step-summary.md"
    ci_project.env.update(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary), GITHUB_RUN_ID="4242")
    suite = write_suite(ci_project, "live", LIVE_TEST)
    result = ci_project.invoke("ci", "--tests", suite, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ci passed in" in result.stdout

    artifacts = ci_project.root / "artifacts"
    found = sorted(str(p.relative_to(artifacts)) for p in artifacts.rglob("*") if p.is_file())
    assert found == ARTIFACTS
    passwords = Path(ci_project.env["SECRET_OUT"]).read_text().split()  # the owner's, the reader's
    assert len(passwords) == 2 and all(len(password) > 16 for password in passwords)
    for password in passwords:
        for path in artifacts.rglob("*"):
            if path.is_file():
                assert password not in path.read_text(), f"a stack password is in {path}"
        assert password not in result.stdout + result.stderr
    assert (
        "***" in (artifacts / "junit.xml").read_text() and "leak:" in (artifacts / "logs/api.log").read_text()
    )

    ledger = steps_of(ci_project)
    assert ledger["result"] == "passed" and ledger["exit_code"] == 0 and ledger["failed_step"] is None
    assert ledger["stack"].startswith("ci-4242-1-")
    names = [step["name"] for step in ledger["steps"]]
    assert names[0] == "artifacts" and sorted(names[1:7]) == sorted(UP_STEPS) and in_branch_order(names[1:7])
    assert names[7:] == ["tests", "smoke", "diagnose", "teardown", "collect"]
    assert all(step["status"] == "OK" for step in ledger["steps"])
    for key in ("attempts", "started_at", "duration_s", "detail"):
        assert all(key in step for step in ledger["steps"])
    smoke = next(step for step in ledger["steps"] if step["name"] == "smoke")
    assert "Iliad 1.1 first" in smoke["detail"]
    tests = next(step for step in ledger["steps"] if step["name"] == "tests")
    assert "1 tests, 0 failures" in tests["detail"]

    diagnosis = json.loads((artifacts / "diagnose.json").read_text())
    assert diagnosis["healthy"] is True and diagnosis["db"]["server_version"]
    versions = (artifacts / "versions.txt").read_text()
    assert "python 3." in versions and f"postgresql-server {diagnosis['db']['server_version']}" in versions
    assert "**PASSED**" in (artifacts / "summary.md").read_text()

    # GitHub Actions: a group per step, the plain step lines, and the table in the step summary
    assert "::group::tests" in result.stdout and "::endgroup::" in result.stdout
    assert "::STEP::smoke::OK" in result.stdout and "::error" not in result.stdout
    assert "| `smoke` | OK |" in summary.read_text()
    assert leftovers(ci_project, ledger["stack"]) == []


def test_an_app_that_cannot_import_fails_at_api_health_with_its_log(ci_project, tmp_path):
    summary = tmp_path / "github-step-summary.md"
    ci_project.env.update(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    (ci_project.root / "app" / "main.py").write_text("import no_such_module\n")
    result = ci_project.invoke("ci", "--tests", "none", timeout=300)
    assert result.returncode == 6, result.stdout + result.stderr
    assert "::STEP::api-health::FAIL" in result.stdout
    assert "::error title=step api-health failed::uvicorn exited" in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("error: uvicorn exited with code")
    assert "Traceback" not in result.stderr.split("---- last log lines ----")[0]

    artifacts = ci_project.root / "artifacts"
    ledger = steps_of(ci_project)
    assert ledger["result"] == "failed" and ledger["failed_step"] == "api-health" and ledger["exit_code"] == 6
    statuses = {step["name"]: step["status"] for step in ledger["steps"]}
    assert statuses["api-health"] == "FAIL"
    assert statuses["tests"] == statuses["smoke"] == "SKIP"
    assert statuses["diagnose"] == statuses["teardown"] == statuses["collect"] == "OK"
    table = (artifacts / "summary.md").read_text()
    assert "**FAILED** at step `api-health`" in table and "| `api-health` | **FAIL** |" in table
    assert "No module named 'no_such_module'" in (artifacts / "logs" / "api.log").read_text()
    diagnosis = json.loads((artifacts / "diagnose.json").read_text())
    assert diagnosis["failed_step"]["name"] == "api-health" and diagnosis["healthy"] is False
    assert not (artifacts / "junit.xml").exists()  # the tests did not run
    assert "| `api-health` | **FAIL** |" in summary.read_text()
    assert leftovers(ci_project, ledger["stack"]) == []


def test_unwritable_artifacts_is_one_line_and_exit_10_and_the_stack_is_torn_down(ci_project):
    blocker = ci_project.root / "artifacts"
    blocker.write_text("a file where the folder should be")
    before = ci_project.invoke("ci", "--tests", "none", timeout=300)
    assert before.returncode == 10, before.stdout + before.stderr
    assert before.stderr.strip().count("\n") == 0
    assert before.stderr.startswith("error: cannot write the artifacts to") and "--artifacts" in before.stderr
    assert "::STEP::artifacts::FAIL" in before.stdout and "::STEP::db::" not in before.stdout
    assert "::STEP::teardown::OK" in before.stdout
    assert blocker.read_text() == "a file where the folder should be"

    blocker.unlink()  # now writable at the start, made unwritable by the suite in the middle
    suite = write_suite(ci_project, "block", BLOCK_ARTIFACTS)
    during = ci_project.invoke("ci", "--tests", suite, timeout=300)
    assert during.returncode == 10, during.stdout + during.stderr
    assert during.stderr.strip().count("\n") == 0 and "cannot write the artifacts" in during.stderr
    assert "::STEP::teardown::OK" in during.stdout and "::STEP::collect::FAIL" in during.stdout
    assert "::STEP::api-stop::OK" in during.stdout and "::STEP::volumes::OK" in during.stdout
    assert leftovers(ci_project) == []


def test_ctrl_c_during_the_tests_still_tears_down_and_exits_130(ci_project):
    suite = write_suite(ci_project, "wait", WAIT_FOR_CTRL_C)
    ready = Path(ci_project.env["READY_OUT"])
    child = subprocess.Popen(
        [sys.executable, "-m", "invoke", "ci", "--tests", suite],
        cwd=ci_project.root,
        env=ci_project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        for _ in range(1200):
            if ready.exists() or child.poll() is not None:
                break
            time.sleep(0.1)
        assert ready.exists(), "the suite never started"
        os.killpg(child.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:  # a failed test still lets the run tear its stack down
            os.killpg(child.pid, signal.SIGINT)
            child.communicate(timeout=120)
    assert child.returncode == 130, out + err
    assert err.strip().splitlines()[-1] == "interrupted"
    ledger = steps_of(ci_project)
    statuses = {step["name"]: (step["status"], step["detail"]) for step in ledger["steps"]}
    assert statuses["tests"] == ("FAIL", "interrupted")
    assert statuses["teardown"][0] == "OK" and statuses["collect"][0] == "OK"
    assert ledger["exit_code"] == 130
    assert leftovers(ci_project, ledger["stack"]) == []


def test_failing_tests_exit_1_and_the_smoke_search_still_runs(ci_project):
    suite = write_suite(ci_project, "fails", "def test_fails():\n    assert 1 == 2\n")
    result = ci_project.invoke("ci", "--tests", suite, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: the tests failed (pytest exit code 1)")
    ledger = steps_of(ci_project)
    statuses = {step["name"]: step["status"] for step in ledger["steps"]}
    assert ledger["failed_step"] == "tests" and ledger["exit_code"] == 1
    assert statuses["tests"] == "FAIL" and statuses["smoke"] == "OK" and statuses["teardown"] == "OK"
    junit = (ci_project.root / "artifacts" / "junit.xml").read_text()
    assert 'failures="1"' in junit
    assert leftovers(ci_project, ledger["stack"]) == []
