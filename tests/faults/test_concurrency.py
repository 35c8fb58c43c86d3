"""Two `invoke up` at once on one stack: the lock lets one run, the other fails clearly."""

from __future__ import annotations

import time

import pytest

from tests.support.invoke import spawn
from tests.support.output import report, step_lines
from tests.support.procs import postmasters, process_line

pytestmark = pytest.mark.e2e


def test_two_concurrent_ups_one_runs_the_other_gets_exit_8_and_one_postmaster(project):
    """Never two postmasters on one data dir; the loser says so in one line; a final up is healthy."""
    started = time.monotonic()
    first, second = spawn(project, "up", name="first"), spawn(project, "up", name="second")
    most_postmasters, seen = 0, {}
    while first.process.poll() is None or second.process.poll() is None:
        found = postmasters(project)
        if len(found) > most_postmasters:
            most_postmasters, seen = len(found), {pid: process_line(pid) for pid in found}
        if time.monotonic() - started > 120:
            raise AssertionError("the two ups did not finish within 120 s")
        time.sleep(0.02)
    codes = sorted([first.wait(), second.wait()])
    loser = first if first.process.returncode == 8 else second
    report("two concurrent ups", time.monotonic() - started, exits=codes, most_postmasters=most_postmasters)

    assert codes in ([0, 8], [0, 0]), (first.stderr, second.stderr)
    assert most_postmasters == 1, seen
    if codes == [0, 8]:
        lines = loser.stderr.strip().splitlines()
        assert len(lines) == 1 and "another harness command is running" in lines[0], loser.stderr
        assert step_lines(loser.stdout) == {}  # it did nothing

    final = project.invoke("up")
    assert final.returncode == 0, final.stderr
    status = project.invoke("status")
    assert status.returncode == 0, status.stdout
    assert len(postmasters(project)) == 1
