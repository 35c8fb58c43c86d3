"""The GitHub Actions workflow: pinned actions, least permissions, bounded, artifacts always uploaded;
the suite in three shards and a job that merges them."""

from __future__ import annotations

import re

from tests.support.paths import PROJECT_DIR

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
# a missing job fails the first test below
LINUX, MERGE, MACOS = JOBS.get("ci", ""), JOBS.get("merge", ""), JOBS.get("macos", "")
LINT = JOBS.get("lint", "")
SHARD_RUN = r"^        run: invoke ci --shard \$\{\{ matrix\.shard \}\}/(\d+)$"
DOWNLOAD = "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093"


def test_the_workflow_has_linux_shards_a_merge_a_macos_and_a_lint_job():
    assert set(JOBS) == {"ci", "merge", "macos", "lint"}
    assert re.search(r"^    runs-on: ubuntu-latest$", LINUX, re.M)
    assert re.search(r"^    runs-on: ubuntu-latest$", MERGE, re.M)
    assert re.search(r"^    runs-on: macos-latest$", MACOS, re.M)


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version():
    uses = re.findall(r"uses:\s*(\S+)(.*)", WORKFLOW)
    assert {ref.split("@")[0] for ref, _ in uses} == {
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
        "actions/download-artifact",
    }
    for ref, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
        assert re.search(r"# v\d+\.\d+\.\d+", comment), f"{ref} has no version comment"
    linux, merge, macos = ({*re.findall(r"uses:\s*(\S+)", job)} for job in (LINUX, MERGE, MACOS))
    assert macos == linux  # the same actions at the same commits in every job
    assert {*re.findall(r"uses:\s*(\S+)", LINT)} <= linux
    assert merge == {*linux, DOWNLOAD}


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
        ("ci", LINUX, SHARD_RUN),
        ("macos", MACOS, r"^        run: invoke ci --backend embedded$"),
    ):
        assert 'python-version: "3.11"' in job, name
        steps = split_steps(job)
        install = step_index(steps, r"run: python -m pip install -e '\.\[dev\]'$")
        run = step_index(steps, command)
        upload = step_index(steps, r"uses: actions/upload-artifact@")
        assert install < run < upload, name
        assert re.search(r"^        if: always\(\)$", steps[upload], re.M), name
        assert re.search(r"^          path: artifacts/$", steps[upload], re.M), name


def test_the_linux_job_is_a_matrix_of_shards_each_running_its_own():
    matrix = re.search(
        r"^    strategy:\n      fail-fast: false\b.*\n      matrix:\n        shard: \[(.+)\]$", LINUX, re.M
    )
    assert matrix, "the ci job has no `shard` matrix with fail-fast off"
    shards = [int(k) for k in matrix[1].split(",")]
    (total,) = re.findall(SHARD_RUN, LINUX, re.M)
    assert shards == list(range(1, int(total) + 1)) == [1, 2, 3]  # each K of N once: the whole suite


def upload_name(job: str) -> str:
    """The artifact name of the job's one upload step."""
    steps = split_steps(job)
    (name,) = re.findall(
        r"^          name: (.+)$", steps[step_index(steps, r"uses: actions/upload-artifact@")], re.M
    )
    return name


def test_every_upload_has_a_distinct_name_of_this_run():
    linux, merged, macos = (upload_name(job) for job in (LINUX, MERGE, MACOS))
    assert len({linux, merged, macos}) == 3
    assert "${{ matrix.shard }}" in linux  # one per shard
    assert "macos" in macos and "merged" in merged
    for name in (linux, merged, macos):
        assert "${{ github.run_id }}" in name and "${{ github.run_attempt }}" in name


def test_the_merge_job_waits_for_every_shard_and_merges_what_they_uploaded():
    assert re.search(r"^    needs: ci$", MERGE, re.M) and re.search(r"^    if: always\(\)$", MERGE, re.M)
    steps = split_steps(MERGE)
    install = step_index(steps, r"^        run: python -m pip install -e \.$")
    download = step_index(steps, rf"uses: {DOWNLOAD} # v4\.3\.0$")
    merge = step_index(steps, r"^        run: invoke ci-merge shards --out merged$")
    upload = step_index(steps, r"uses: actions/upload-artifact@")
    assert install < merge and download < merge < upload
    (pattern,) = re.findall(r"^          pattern: (.+)$", steps[download], re.M)
    shard_name, macos_name = (upload_name(job) for job in (LINUX, MACOS))
    assert pattern.endswith("*") and shard_name.startswith(pattern[:-1])  # every shard's, and only theirs
    assert not macos_name.startswith(pattern[:-1])
    assert re.search(r"^          path: shards/$", steps[download], re.M)
    assert re.search(r"^        if: always\(\)$", steps[upload], re.M)
    assert re.search(r"^          path: merged/$", steps[upload], re.M)


def test_busybox_and_postgresql_are_installed_before_invoke_ci_on_linux():
    steps = split_steps(LINUX)
    apt = step_index(steps, r"^\s+sudo apt-get install .*\bbusybox-static\b")
    assert re.search(r"^\s+sudo apt-get install .*\bpostgresql\b", steps[apt], re.M)
    assert apt < step_index(steps, SHARD_RUN)


def test_a_quick_benchmark_runs_after_the_tests_of_one_shard_and_lands_in_its_artifacts():
    steps = split_steps(LINUX)
    bench = step_index(steps, r"^        run: invoke bench --quick$")
    assert re.search(r"^        if: matrix\.shard == 1$", steps[bench], re.M)  # one set of figures per run
    assert step_index(steps, SHARD_RUN) < bench
    assert bench < step_index(steps, r"^          path: artifacts/$")
    assert "invoke bench" not in MACOS  # figures from one kind of runner only


def test_the_lint_job_installs_the_dev_tools_and_runs_invoke_lint():
    steps = split_steps(LINT)
    install = step_index(steps, r"^        run: python -m pip install -e '\.\[dev\]'$")
    assert install < step_index(steps, r"^        run: invoke lint$")
