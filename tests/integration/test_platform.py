"""The portable process layer (psutil) and the marks, against real processes on this machine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from ops import children, orphans
from ops.platform import IS_POSIX, detached
from ops.procs import cmdline, cwd, pid_alive, port_holder, process, terminate
from ops.scope import mark_of, marked_processes, marks
from ops.state import ProcessRecord, StackState
from tests.support.stacks import stack_settings

# A parent that starts a child which inherits its environment, then both sleep.
PARENT_AND_CHILD = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
)


def spawn(code: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **(env or {})}, **kwargs)


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_liveness_command_line_and_directory_of_a_real_child(tmp_path):
    child = spawn("import time; time.sleep(30)", cwd=tmp_path)
    try:
        assert pid_alive(child.pid) and process(child.pid) is not None
        wait_until(lambda: "time.sleep(30)" in cmdline(child.pid))  # once its exec is done: '' until then
        assert cwd(child.pid) == tmp_path.resolve()
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid) and cmdline(child.pid) == ""


@pytest.mark.skipif(not IS_POSIX, reason="zombies are a POSIX notion")
def test_a_zombie_child_is_not_alive_and_is_reaped():
    child = spawn("pass")
    wait_until(lambda: process(child.pid) is None)  # exited: a zombie until reaped, reaped here
    assert not pid_alive(child.pid)
    child.wait(timeout=5)  # Popen learns it is gone (reaped by us, so its code reads as 0)


def test_an_exit_code_survives_a_liveness_check_that_sees_the_exit(tmp_path):
    """`pid_alive` on a spawned child reaps it through its Popen: the code stays readable."""
    settings = stack_settings(tmp_path / "state")
    argv = [sys.executable, "-c", "raise SystemExit(3)"]
    pid = children.spawn(settings, "worker", argv, {}, tmp_path / "w.log")
    wait_until(lambda: not pid_alive(pid))
    assert children.exit_code(pid) == 3
    assert children.stop(pid) is False


def test_terminate_stops_a_process_and_its_children():
    parent = spawn(PARENT_AND_CHILD, **detached())
    wait_until(lambda: bool(process(parent.pid) and process(parent.pid).children()))  # type: ignore[union-attr]
    grandchild = process(parent.pid).children()[0].pid  # type: ignore[union-attr]
    assert terminate(parent.pid, grace=2)
    parent.wait(timeout=5)
    wait_until(lambda: not pid_alive(grandchild))


def test_the_holder_of_a_listening_port_is_named():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        holder = port_holder(listener.getsockname()[1])
    assert holder is not None and holder.pid == os.getpid() and "pytest" in holder.command


def test_marks_are_read_back_and_only_the_top_process_is_listed(tmp_path):
    settings = stack_settings(tmp_path)
    parent = spawn(PARENT_AND_CHILD, env=marks(settings, "worker"), **detached())
    try:
        wait_until(lambda: bool(process(parent.pid) and process(parent.pid).children()))  # type: ignore[union-attr]
        mark = mark_of(parent.pid)
        assert mark is not None and mark.belongs_to(settings) and mark.component == "worker"
        assert mark.stack == settings.stack and mark.checkout == str(settings.project_dir)
        listed = [found for found in marked_processes() if found.belongs_to(settings)]
        assert [found.pid for found in listed] == [parent.pid]  # its child inherits the marks, unlisted
        assert mark_of(os.getpid()) is None  # the test itself carries no marks
    finally:
        terminate(parent.pid, grace=2)
        parent.wait(timeout=5)


def test_an_orphan_of_this_stack_is_swept_and_another_stacks_is_not(tmp_path):
    mine, theirs = stack_settings(tmp_path / "mine"), stack_settings(tmp_path / "theirs")
    orphan = spawn("import time; time.sleep(60)", env=marks(mine, "api"), **detached())
    bystander = spawn("import time; time.sleep(60)", env=marks(theirs, "api"), **detached())
    try:
        wait_until(lambda: mark_of(orphan.pid) is not None and mark_of(bystander.pid) is not None)
        assert [found.pid for found in orphans.find(mine, StackState())] == [orphan.pid]
        recorded = StackState(api=ProcessRecord(pid=orphan.pid))
        assert orphans.find(mine, recorded) == []  # the recorded one is not an orphan
        swept = orphans.sweep(mine, StackState())
        assert swept == [f"stopped orphaned api pid {orphan.pid} (stack homer, checkout {mine.project_dir})"]
        orphan.wait(timeout=5)
        assert pid_alive(bystander.pid)
    finally:
        for child in (orphan, bystander):
            terminate(child.pid, grace=2)
            child.wait(timeout=5)
