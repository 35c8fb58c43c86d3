"""The warm server (`python -m ops.warm_server`) against real processes and real HTTP, no mocks.

A tiny FastAPI app is written under `tmp_path/mini/`; the server runs with `cwd=tmp_path` and the
project on PYTHONPATH. Waits poll with small sleeps up to a deadline; nothing asserts on speed
(the cold-start and reload times are printed by the last test, not checked).
"""

from __future__ import annotations

import http.client
import json
import os
import py_compile
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from ops.procs import free_port, pid_alive
from ops.warm_server import EXIT_GAVE_UP, EXIT_PORT_IN_USE, argv, available, read_events

PROJECT_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not available(), reason="the warm server forks")

MINI_APP = """\
import os
import time

from fastapi import FastAPI

VERSION = {version}
time.sleep(float(os.environ.get("MINI_IMPORT_SLEEP", "0")))
app = FastAPI()


@app.get("/")
def root() -> dict:
    return {{"version": VERSION, "pid": os.getpid()}}


@app.get("/health")
def health() -> dict:
    return {{"ok": True}}


@app.get("/block")
async def block(seconds: float = 1.0) -> dict:
    time.sleep(seconds)  # blocks this child's loop: the next connection is another child's
    return {{"pid": os.getpid()}}
"""


def write_app(root: Path, version: object, *, text: str | None = None) -> Path:
    """Write `mini/app.py` under `root` (a package), serving `version`; return its path."""
    package = root / "mini"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").touch()
    path = package / "app.py"
    path.write_text(MINI_APP.format(version=version) if text is None else text)
    return path


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def get(port: int, path: str = "/", timeout: float = 3.0) -> dict[str, Any] | None:
    """GET on a new connection; the JSON body of a 200, else None (nothing answered, or an error)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        return json.loads(body) if response.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()


@dataclass
class Warm:
    """A running warm server, its port, its events (tailed with `read_events`) and its log."""

    proc: subprocess.Popen[bytes]
    port: int
    events_path: Path
    log: Path
    offset: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        new, self.offset = read_events(self.events_path, self.offset)
        self.seen += new
        return [event for event in self.seen if kind is None or event["event"] == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 20.0) -> dict[str, Any]:
        """The `count`-th event `kind`, waiting for it; fails with the log if the server exits first."""
        deadline = time.monotonic() + timeout
        while len(found := self.events(kind)) < count:
            if self.proc.poll() is not None and len(self.events(kind)) < count:
                pytest.fail(f"the warm server exited ({self.proc.returncode}) before {kind}:\n{self.tail()}")
            assert time.monotonic() < deadline, f"no {kind} event within {timeout} s:\n{self.tail()}"
            time.sleep(0.02)
        return found[count - 1]

    def get(self, path: str = "/", timeout: float = 3.0) -> dict[str, Any] | None:
        return get(self.port, path, timeout)

    def serves(self, version: int) -> dict[str, Any]:
        """Wait until `/` answers `version` (on a new connection); the answer."""
        return wait_until(
            lambda: (body := self.get()) is not None and body["version"] == version and body,
            what=f"version {version} to be served",
        )

    def child_pids(self) -> set[int]:
        try:
            return {child.pid for child in psutil.Process(self.proc.pid).children()}
        except psutil.NoSuchProcess:
            return set()

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Warm]]:
    """Start warm servers on free ports; stop them (and any child they left) at the end."""
    started: list[Warm] = []

    def run(
        *extra: str,
        app: str = "mini.app:app",
        cwd: Path = tmp_path,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> Warm:
        port = port or free_port()
        events = tmp_path / f"events-{len(started)}.jsonl"
        log = tmp_path / f"warm-{len(started)}.log"
        command = [*argv(app, "127.0.0.1", port, events), *extra]
        full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        full_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])
        )
        with open(log, "wb") as out:
            proc = subprocess.Popen(command, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT)
        started.append(Warm(proc, port, events, log))
        return started[-1]

    yield run
    for warm in started:
        pids = warm.child_pids() | {pid for event in warm.events() for pid in event.get("pids", [])}
        pids |= {event["pid"] for event in warm.events("restarted")}
        if warm.proc.poll() is None:
            warm.proc.terminate()
        try:
            warm.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            warm.proc.kill()
            warm.proc.wait()
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_first_generation_serves_with_the_libraries_preloaded(tmp_path, start):
    write_app(tmp_path, 1)
    warm = start()
    ready = warm.wait_for("ready")
    assert ready["generation"] == 1 and len(ready["pids"]) == 1
    assert "fastapi" in ready["preloaded_packages"] and ready["preloaded"] > 50
    assert "mini" not in ready["preloaded_packages"]  # the project's own modules stay out of the parent
    body = warm.serves(1)
    assert body["pid"] == ready["pids"][0] != warm.proc.pid
    assert warm.get("/health") == {"ok": True}
    preloaded = warm.events("preloaded")[0]
    assert preloaded["count"] == ready["preloaded"]
    parent = psutil.Process(warm.proc.pid)
    before = sum(parent.cpu_times()[:2])
    time.sleep(1.0)
    assert sum(parent.cpu_times()[:2]) - before < 0.1, "the idle parent should sleep in its selector"
    assert parent.num_threads() == 1


def test_sighup_serves_the_edit_on_the_same_port(tmp_path, start):
    source = write_app(tmp_path, 1)
    py_compile.compile(str(source))  # a .pyc that a same-second, same-size edit would leave stale
    stat = source.stat()
    warm = start()
    old = warm.wait_for("ready")["pids"][0]
    warm.serves(1)
    write_app(tmp_path, 2)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime: stale by .pyc rules
    warm.signal(signal.SIGHUP)
    reloaded = warm.wait_for("reloaded")
    assert reloaded["generation"] == 2 and reloaded["pids"] != [old]
    wait_until(lambda: not pid_alive(old), timeout=10, what="the old child to stop")
    assert warm.wait_for("retired")["pids"] == [old]
    for _ in range(5):
        assert warm.get() == {"version": 2, "pid": reloaded["pids"][0]}
    assert warm.child_pids() == set(reloaded["pids"])


def test_a_broken_edit_keeps_the_old_code_serving(tmp_path, start):
    write_app(tmp_path, 1)
    warm = start()
    serving = warm.wait_for("ready")["pids"][0]
    warm.serves(1)
    write_app(tmp_path, 1, text="VERSION = (\n")
    warm.signal(signal.SIGHUP)
    failed = warm.wait_for("reload_failed")
    assert failed["error"].startswith("SyntaxError") and "app.py" in failed["error"]
    assert "SyntaxError" in failed["traceback"] and failed["generation"] == 2 and failed["serving"] == 1
    assert warm.get() == {"version": 1, "pid": serving}
    write_app(tmp_path, 3)
    warm.signal(signal.SIGHUP)
    reloaded = warm.wait_for("reloaded")
    assert reloaded["generation"] == 3
    wait_until(lambda: not pid_alive(serving), timeout=10, what="the old child to stop")
    assert warm.serves(3)["pid"] == reloaded["pids"][0]


FAILING_LIFESPAN = """\
from contextlib import asynccontextmanager

from fastapi import FastAPI


@asynccontextmanager
async def lifespan(app):
    raise RuntimeError("no database today")
    yield


app = FastAPI(lifespan=lifespan)
"""


def test_a_failing_startup_is_a_failed_reload_with_its_error(tmp_path, start):
    write_app(tmp_path, 1)
    warm = start()
    serving = warm.wait_for("ready")["pids"][0]
    write_app(tmp_path, 1, text=FAILING_LIFESPAN)
    warm.signal(signal.SIGHUP)
    failed = warm.wait_for("reload_failed")
    assert failed["error"] == "RuntimeError: no database today" and "lifespan" in failed["traceback"]
    assert warm.get() == {"version": 1, "pid": serving}


def test_a_broken_first_generation_waits_for_a_fix(tmp_path, start):
    write_app(tmp_path, 1, text="import no_such_module_here\n")
    warm = start()
    failed = warm.wait_for("reload_failed")
    assert failed["generation"] == 1 and failed["serving"] is None
    assert "ModuleNotFoundError" in failed["error"] and "no_such_module_here" in failed["error"]
    assert warm.events("preloaded")[0]["count"] == 0  # the probe could not import the app
    assert warm.proc.poll() is None  # still up, waiting for the fix
    write_app(tmp_path, 4)
    warm.signal(signal.SIGHUP)
    assert warm.wait_for("ready")["generation"] == 2
    warm.serves(4)


def test_sighups_during_a_reload_make_one_more_reload(tmp_path, start):
    write_app(tmp_path, 1)
    warm = start(env={"MINI_IMPORT_SLEEP": "0.6"})  # each generation takes a while to import
    warm.wait_for("ready")
    warm.signal(signal.SIGHUP)
    wait_until(lambda: len(warm.child_pids()) == 2, what="the new generation to be forked")
    warm.signal(signal.SIGHUP)
    warm.signal(signal.SIGHUP)
    assert warm.wait_for("reloaded", 2)["generation"] == 3
    time.sleep(1.5)  # longer than an import: a third reload would have happened by now
    assert [event["generation"] for event in warm.events("reloaded")] == [2, 3]
    warm.serves(1)


def test_a_killed_child_is_replaced_until_it_crashes_too_often(tmp_path, start):
    write_app(tmp_path, 1)
    warm = start("--max-quick-crashes", "2")
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


def test_restart_no_exits_when_the_last_child_is_gone(tmp_path, start):
    write_app(tmp_path, 1)
    warm = start("--restart", "no")
    child = warm.wait_for("ready")["pids"][0]
    os.kill(child, signal.SIGKILL)
    assert warm.wait_for("child_exited")["pid"] == child
    assert warm.proc.wait(timeout=15) == EXIT_GAVE_UP
    assert not warm.events("restarted")


def test_restart_no_with_two_workers_leaves_one_serving_until_a_sighup_forks_two_anew(tmp_path, start):
    """What `up` runs for `workers = 2`: a killed worker stays dead (the harness heals), the other serves,
    and SIGHUP forks a whole generation on the same socket; the events say which pids serve."""
    from ops.api_workers import serving

    write_app(tmp_path, 1)
    warm = start("--workers", "2", "--restart", "no")
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


def test_sigterm_stops_the_parent_and_all_its_children(tmp_path, start):
    write_app(tmp_path, 1)
    warm = start("--workers", "2")
    pids = warm.wait_for("ready")["pids"]
    warm.serves(1)
    warm.signal(signal.SIGTERM)
    assert warm.proc.wait(timeout=15) == 0
    assert warm.events()[-1]["event"] == "stopped"
    assert not any(pid_alive(pid) for pid in pids)


def test_children_stop_by_themselves_when_the_parent_is_killed(tmp_path, start):
    write_app(tmp_path, 1)
    warm = start("--workers", "2")
    pids = warm.wait_for("ready")["pids"]
    warm.serves(1)
    warm.signal(signal.SIGKILL)
    warm.proc.wait(timeout=5)
    wait_until(lambda: not any(pid_alive(pid) for pid in pids), timeout=10, what="the orphans to exit")
    assert warm.get(timeout=1) is None


def test_two_workers_serve_from_two_processes(tmp_path, start):
    write_app(tmp_path, 1)
    warm = start("--workers", "2")
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


def test_a_taken_port_is_exit_code_7(tmp_path, start):
    write_app(tmp_path, 1)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        warm = start(port=holder.getsockname()[1])
        assert warm.proc.wait(timeout=15) == EXIT_PORT_IN_USE
    assert "cannot listen" in warm.tail() and len(warm.tail().strip().splitlines()) == 1


def _first_200(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if get(port, path, timeout=1) is not None:
            return time.monotonic()
        time.sleep(0.01)
    return None


def _cold_uvicorn(app: str, cwd: Path, path: str) -> float | None:
    """Seconds from starting plain uvicorn to its first 200 on `path` (None if it never answered)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    began = time.monotonic()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        answered = _first_200(port, path, proc)
        return None if answered is None else answered - began
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_measure_cold_start_against_reload(tmp_path, start, capsys):
    """Printed, not asserted: plain uvicorn's cold start against the warm server's reload."""
    source = write_app(tmp_path, 1)
    cold = _cold_uvicorn("mini.app:app", tmp_path, "/health")
    began = time.monotonic()
    warm = start()
    first = _first_200(warm.port, "/health", warm.proc)
    source.write_text(source.read_text().replace("VERSION = 1", "VERSION = 2"))
    hup = time.monotonic()
    warm.signal(signal.SIGHUP)
    warm.serves(2)
    served = time.monotonic() - hup
    reloaded = warm.wait_for("reloaded")["seconds"]
    lines = [
        f"mini app: cold uvicorn to first 200 {cold or float('nan'):.2f} s; warm server start to first 200 "
        f"{(first or began) - began:.2f} s; SIGHUP to new code served {served:.3f} s (reloaded {reloaded} s)"
    ]
    project = start(app="app.main:app", cwd=PROJECT_DIR)
    try:
        ready = project.wait_for("ready", timeout=60)["seconds"]
        project.signal(signal.SIGHUP)
        again = project.wait_for("reloaded", timeout=60)["seconds"]
        project_cold = _cold_uvicorn("app.main:app", PROJECT_DIR, "/openapi.json")
        lines.append(
            f"app.main: cold uvicorn to first 200 (/openapi.json) {project_cold or float('nan'):.2f} s; "
            f"warm start to ready {ready:.2f} s; SIGHUP to reloaded {again:.3f} s"
        )
    except (AssertionError, pytest.fail.Exception) as exc:  # the project is being edited: not this test's
        lines.append(f"app.main: not measured ({str(exc).splitlines()[0]})")
    with capsys.disabled():
        print("\n" + "\n".join(f"warm-server timing: {line}" for line in lines))
