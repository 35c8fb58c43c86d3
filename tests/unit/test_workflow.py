"""The GitHub Actions workflow: pinned actions, least permissions, bounded, artifacts always uploaded."""

from __future__ import annotations

import re

from tests.helpers import PROJECT_DIR

WORKFLOW = (PROJECT_DIR / ".github" / "workflows" / "ci.yml").read_text()


def split_jobs(workflow: str) -> dict[str, str]:
    """Each job's text by its id: the two-space-indented keys under the top-level `jobs:`."""
    body = workflow.split("\njobs:\n", 1)[1]
    parts = re.split(r"^  ([\w-]+):\n", body, flags=re.M)
    assert not parts[0].strip(), f"text before the first job: {parts[0]!r}"
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def split_steps(job: str) -> list[str]:
    """A job's steps, each the text from its `- name:` to the next."""
    steps = job.split("\n    steps:\n", 1)[1]
    return ["- name:" + text for text in re.split(r"^      - name:", steps, flags=re.M)[1:]]


def step_index(steps: list[str], pattern: str) -> int:
    """The index of the one step matching `pattern` (a regex, multi-line)."""
    found = [i for i, text in enumerate(steps) if re.search(pattern, text, re.M)]
    assert len(found) == 1, f"{len(found)} steps match {pattern!r}"
    return found[0]


JOBS = split_jobs(WORKFLOW)
LINUX, MACOS = JOBS.get("ci", ""), JOBS.get("macos", "")  # a missing job fails the first test below


def test_the_workflow_has_a_linux_and_a_macos_job():
    assert set(JOBS) == {"ci", "macos"}
    assert re.search(r"^    runs-on: ubuntu-latest$", LINUX, re.M)
    assert re.search(r"^    runs-on: macos-latest$", MACOS, re.M)


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
    linux, macos = ({*re.findall(r"uses:\s*(\S+)", job)} for job in (LINUX, MACOS))
    assert macos == linux  # the same actions at the same commits in both jobs


def test_least_permissions_a_time_limit_and_one_run_per_ref():
    assert re.search(r"^permissions:\n  contents: read\n", WORKFLOW, re.M)
    assert re.search(r"^concurrency:\n  group: .+\n  cancel-in-progress: true$", WORKFLOW, re.M)
    for name, job in JOBS.items():
        assert re.search(r"^    timeout-minutes: \d+$", job, re.M), f"{name} has no time limit"
        assert "permissions:" not in job, f"{name} widens the permissions"
        checkout = split_steps(job)[step_index(split_steps(job), r"uses: actions/checkout@")]
        assert "persist-credentials: false" in checkout, name


def test_it_runs_invoke_ci_and_always_uploads_the_artifacts():
    for name, job, command in (
        ("ci", LINUX, r"invoke ci"),
        ("macos", MACOS, r"invoke ci --backend embedded"),
    ):
        assert 'python-version: "3.11"' in job, name
        steps = split_steps(job)
        install = step_index(steps, r"run: python -m pip install -e '\.\[dev\]'$")
        run = step_index(steps, rf"^        run: {command}$")
        upload = step_index(steps, r"uses: actions/upload-artifact@")
        assert install < run < upload, name
        assert re.search(r"^        if: always\(\)$", steps[upload], re.M), name
        assert re.search(r"^          path: artifacts/$", steps[upload], re.M), name


def test_the_two_jobs_upload_under_distinct_names():
    names = [
        re.findall(r"^          name: (.+)$", step, re.M)
        for job in (LINUX, MACOS)
        for step in split_steps(job)
        if "actions/upload-artifact@" in step
    ]
    assert len(names) == 2 and all(len(found) == 1 for found in names), names
    (linux,), (macos,) = names
    assert linux != macos
    assert "macos" in macos
    for name in (linux, macos):
        assert "${{ github.run_id }}" in name and "${{ github.run_attempt }}" in name


def test_busybox_and_postgresql_are_installed_before_invoke_ci_on_linux():
    steps = split_steps(LINUX)
    apt = step_index(steps, r"^\s+sudo apt-get install .*\bbusybox-static\b")
    assert re.search(r"^\s+sudo apt-get install .*\bpostgresql\b", steps[apt], re.M)
    assert apt < step_index(steps, r"^        run: invoke ci$")


def test_a_quick_benchmark_runs_after_the_tests_and_lands_in_the_artifacts():
    steps = split_steps(LINUX)
    bench = step_index(steps, r"^        run: invoke bench --quick$")
    assert step_index(steps, r"^        run: invoke ci$") < bench
    assert bench < step_index(steps, r"^          path: artifacts/$")
    assert "invoke bench" not in MACOS  # figures from one kind of runner only
