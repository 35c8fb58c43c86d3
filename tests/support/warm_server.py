"""The warm server's test kit: a tiny FastAPI app to serve, plain HTTP GETs, and `Warm`, a running
server with its port, events and log (started by the `start_warm` fixture, tests/integration/conftest.py)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from ops.warm_server import read_events
from tests.support import procs

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
    """`predicate()` once it is truthy, polled every 0.02 s (`tests.support.procs.wait_for`)."""
    return procs.wait_for(predicate, timeout, what=what)


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
