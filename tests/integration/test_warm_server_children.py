"""The warm server's children (`python -m ops.warm_server`), real processes, no mocks: a killed child
replaced or not (`--restart no`), several workers, stopping by SIGTERM or with the parent, a taken port.

The app, the HTTP GETs and `Warm`: tests/support/warm_server.py; the `start_warm` fixture:
tests/integration/conftest.py. Reloads: test_warm_server.py.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ops.procs import pid_alive
from ops.warm_server import EXIT_GAVE_UP, EXIT_PORT_IN_USE, available
from tests.support.warm_server import Warm, wait_until, write_app

pytestmark = pytest.mark.skipif(not available(), reason="the warm server forks")


def test_a_killed_child_is_replaced_until_it_crashes_too_often(tmp_path, start_warm):
    write_app(tmp_path, 1)
    warm = start_warm("--max-quick-crashes", "2")
    first = warm.wait_for("ready")["pids"][0]
    os.kill(first, signal.SIGKILL)
    exited = warm.wait_for("child_exited")
    assert exited["pid"] == first and exited["code"] == -signal.SIGKILL
    restarted = warm.wait_for("restarted")
    assert restarted["replaces"] == first
    assert warm.serves(1)["pid"] == restarted["pid"] != first
    os.kill(restarted["pid"], signal.SIGKILL)
    gave_up = warm.wait_for("gave_up")
    assert gave_up["crashes"] == 2
    assert warm.proc.wait(timeout=15) == EXIT_GAVE_UP
    assert warm.get(timeout=1) is None  # the socket is closed


def test_restart_no_exits_when_the_last_child_is_gone(tmp_path, start_warm):
    write_app(tmp_path, 1)
    warm = start_warm("--restart", "no")
    child = warm.wait_for("ready")["pids"][0]
    os.kill(child, signal.SIGKILL)
    assert warm.wait_for("child_exited")["pid"] == child
    assert warm.proc.wait(timeout=15) == EXIT_GAVE_UP
    assert not warm.events("restarted")


def test_restart_no_with_two_workers_leaves_one_serving_until_a_sighup_forks_two_anew(tmp_path, start_warm):
    """What `up` runs for `workers = 2`: a killed worker stays dead (the harness heals), the other serves,
    and SIGHUP forks a whole generation on the same socket; the events say which pids serve."""
    from ops.api_workers import serving

    write_app(tmp_path, 1)
    warm = start_warm("--workers", "2", "--restart", "no")
    first = warm.wait_for("ready")["pids"]
    os.kill(first[0], signal.SIGKILL)
    assert warm.wait_for("child_exited")["pid"] == first[0]
    assert serving(warm.events()) == {first[1]}
    assert warm.serves(1)["pid"] == first[1]
    warm.signal(signal.SIGHUP)
    second = warm.wait_for("reloaded")["pids"]
    assert len(second) == 2 and not set(second) & set(first)
    assert warm.wait_for("retired")["pids"] == [first[1]]
    assert serving(warm.events()) == set(second) == warm.child_pids()
    assert not warm.events("restarted") and warm.proc.poll() is None


def _two_workers_serving(tmp_path, start_warm) -> tuple[Warm, list[int]]:
    """A warm server with two workers serving the mini app (version 1), and their pids."""
    write_app(tmp_path, 1)
    warm = start_warm("--workers", "2")
    pids = warm.wait_for("ready")["pids"]
    warm.serves(1)
    return warm, pids


def test_sigterm_stops_the_parent_and_all_its_children(tmp_path, start_warm):
    warm, pids = _two_workers_serving(tmp_path, start_warm)
    warm.signal(signal.SIGTERM)
    assert warm.proc.wait(timeout=15) == 0
    assert warm.events()[-1]["event"] == "stopped"
    assert not any(pid_alive(pid) for pid in pids)


def test_children_stop_by_themselves_when_the_parent_is_killed(tmp_path, start_warm):
    warm, pids = _two_workers_serving(tmp_path, start_warm)
    warm.signal(signal.SIGKILL)
    warm.proc.wait(timeout=5)
    wait_until(lambda: not any(pid_alive(pid) for pid in pids), timeout=10, what="the orphans to exit")
    assert warm.get(timeout=1) is None


def test_two_workers_serve_from_two_processes(tmp_path, start_warm):
    write_app(tmp_path, 1)
    warm = start_warm("--workers", "2")
    pids = set(warm.wait_for("ready")["pids"])
    assert len(pids) == 2
    seen: set[int] = set()
    deadline = time.monotonic() + 20
    with ThreadPoolExecutor(1) as pool:
        while seen != pids:
            assert time.monotonic() < deadline, f"only {seen} of {pids} answered"
            blocked = pool.submit(warm.get, "/block?seconds=1", 10)
            time.sleep(0.3)  # one child is inside /block now: the next connection is the other's
            other = warm.get()
            for body in (blocked.result(), other):
                if body is not None:
                    seen.add(body["pid"])
    assert seen == pids


def test_a_taken_port_is_exit_code_7(tmp_path, start_warm):
    write_app(tmp_path, 1)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        warm = start_warm(port=holder.getsockname()[1])
        assert warm.proc.wait(timeout=15) == EXIT_PORT_IN_USE
    assert "cannot listen" in warm.tail() and len(warm.tail().strip().splitlines()) == 1
