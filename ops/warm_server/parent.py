"""The warm parent: one socket, preloaded libraries, and generations of forked uvicorn children.

A single thread and no event loop of asyncio's (it forks): `selectors` over the children's status
pipes and a self-pipe (`signal.set_wakeup_fd`), timers for backoffs and SIGKILL deadlines, and
`waitpid(-1, WNOHANG)` on SIGCHLD. Idle, it sleeps in the selector.

- SIGHUP: fork a new generation; once all its children are ready, SIGTERM the old one (SIGKILL
  after 5 s) and emit `reloaded`. If it fails, what is left of it is stopped, the old generation
  keeps serving and `reload_failed` says why. SIGHUPs during a reload make one more reload after it.
- A serving child that exits: `child_exited`, then (restart on-failure/always) a replacement after a
  backoff, `restarted` once it is ready; after K quick crashes in a row, `gave_up` and exit 11.
- SIGTERM/SIGINT: stop every child (SIGKILL after 5 s), emit `stopped`, exit 0.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ops.warm_server import EXIT_GAVE_UP, child
from ops.warm_server.events import Events
from ops.warm_server.preload import Preloaded, Project
from ops.warm_server.records import HANDLED, READY_TIMEOUT, STOP_GRACE, Child, Crashes, Options, Pending


def _ignore(_signum: int, _frame: Any) -> None:
    """The Python-level handler: the wakeup fd carries the signal to the loop."""


def _parse(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def _describe(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exited with code {code}"


@dataclass
class Supervisor:
    """The parent's state and its event loop."""

    options: Options
    project: Project
    sock: socket.socket
    events: Events
    preloaded: Preloaded
    children: dict[int, Child] = field(default_factory=dict)
    serving: int | None = None  # the generation that serves
    pending: Pending | None = None  # the generation being started
    again: float | None = None  # a SIGHUP came during a reload: when
    generations: int = 0
    crashes: Crashes = field(default_factory=Crashes)
    replacing: int = 0  # replacements scheduled, not yet forked
    declined: bool = False  # the restart policy let a child go
    retiring: dict[int, list[int]] = field(default_factory=dict)  # generation -> its pids
    final: tuple[int, str | None] | None = None  # (exit code, last event) once stopping
    exit_code: int | None = None
    timers: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.wakeup_r, self.wakeup_w = os.pipe()

    # --- the loop ------------------------------------------------------------------------------

    def run(self, started: float) -> int:
        for fd in (self.wakeup_r, self.wakeup_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
        for sig in HANDLED:
            signal.signal(sig, _ignore)
        self.selector.register(self.wakeup_r, selectors.EVENT_READ, None)
        self.reload(started)
        while self.exit_code is None:
            timeout = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else None
            for key, _ in self.selector.select(timeout):
                if key.data is None:
                    self._on_signals()
                else:
                    self._on_status(key.data)
            while self.timers and self.timers[0][0] <= time.monotonic() and self.exit_code is None:
                heapq.heappop(self.timers)[2]()
        return self.exit_code

    def _at(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.counter), action))

    def _on_signals(self) -> None:
        received = set()
        with contextlib.suppress(BlockingIOError):
            while data := os.read(self.wakeup_r, 512):
                received |= set(data)
        if received & {signal.SIGTERM, signal.SIGINT}:
            self.shutdown(0, "stopped")
        if signal.SIGCHLD in received:
            self._reap()
        if signal.SIGHUP in received:
            self.reload(time.monotonic())

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._on_exit(pid, os.waitstatus_to_exitcode(status))

    # --- children ------------------------------------------------------------------------------

    def _fork(self, generation: int, replaces: int | None = None) -> Child:
        read_fd, write_fd = os.pipe()
        close = [self.wakeup_r, self.wakeup_w, self.selector.fileno(), read_fd]
        close += [other.fd for other in self.children.values() if other.fd >= 0]
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)  # none reaches the child before it resets
        try:
            pid = os.fork()
            if pid == 0:
                child.serve(self.options.app, self.project, self.sock, write_fd, parent, close)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        record = Child(pid, generation, read_fd, time.monotonic(), replaces)
        self.children[pid] = record
        self.selector.register(read_fd, selectors.EVENT_READ, record)
        return record

    def _on_status(self, record: Child) -> None:
        """Read what the child said: ready, or the error of a failed import or startup."""
        while record.fd >= 0:
            try:
                data = os.read(record.fd, 1 << 16)
            except BlockingIOError:
                break
            if not data:
                self.selector.unregister(record.fd)
                os.close(record.fd)
                record.fd = -1
            record.buffer += data
        *lines, record.buffer = record.buffer.split(b"\n")
        for message in map(_parse, lines):
            if message.get("ready"):
                record.ready = True
                self._on_ready(record)
            elif "error" in message:
                record.error, record.traceback = str(message["error"]), str(message.get("traceback", ""))
                if self._is_pending(record):
                    self._fail_pending(record.error, record.traceback)

    def _is_pending(self, record: Child) -> bool:
        return self.pending is not None and record.generation == self.pending.number and not record.stopping

    def _members(self, generation: int) -> list[Child]:
        return [c for c in self.children.values() if c.generation == generation and not c.stopping]

    def _on_ready(self, record: Child) -> None:
        if self._is_pending(record):
            if all(member.ready for member in self._members(record.generation)):
                self._promote()
        elif record.replaces is not None and not record.stopping:
            seconds = round(time.monotonic() - record.started, 3)
            self.events.emit(
                "restarted",
                f"restarted pid {record.replaces} as pid {record.pid} in {seconds:.2f} s",
                pid=record.pid,
                replaces=record.replaces,
                seconds=seconds,
                generation=record.generation,
            )

    def _on_exit(self, pid: int, code: int) -> None:
        record = self.children.get(pid)
        if record is None:
            return
        self._on_status(record)  # what it said before it died
        del self.children[pid]
        if record.fd >= 0:
            self.selector.unregister(record.fd)
            os.close(record.fd)
        if record.stopping or self.final is not None:
            self._note_retired(record.generation)
        elif self._is_pending(record):
            error = record.error or f"child pid {pid} {_describe(code)} before it was ready"
            self._fail_pending(error, record.traceback)
        else:
            fields = {"error": record.error} if record.error else {}
            self.events.emit(
                "child_exited",
                f"child pid {pid} {_describe(code)}" + (f": {record.error}" if record.error else ""),
                pid=pid,
                code=code,
                generation=record.generation,
                **fields,
            )
            self._crashed(record, code)
        self._check_done()

    def _stop(self, records: list[Child]) -> None:
        """SIGTERM these children now and SIGKILL those still running after STOP_GRACE."""
        for record in records:
            record.stopping = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGTERM)
        pids = [record.pid for record in records]
        self._at(STOP_GRACE, lambda: self._kill(pids))

    def _kill(self, pids: list[int]) -> None:
        for pid in pids:
            if pid in self.children:  # not reaped: still ours, so not a reused pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    # --- generations ---------------------------------------------------------------------------

    def reload(self, requested: float) -> None:
        """Fork a new generation (or, during a reload, one more after it)."""
        if self.final is not None:
            return
        if self.pending is not None:
            self.again = self.again if self.again is not None else requested
            return
        self.generations += 1
        number = self.generations
        self.pending = Pending(number, requested)
        for _ in range(self.options.workers):
            self._fork(number)
        self._at(READY_TIMEOUT, lambda: self._ready_timeout(number))

    def _ready_timeout(self, number: int) -> None:
        if self.pending is not None and self.pending.number == number:
            self._fail_pending(f"generation {number} was not ready within {READY_TIMEOUT:.0f} s", "")

    def _promote(self) -> None:
        """The pending generation is ready: it serves now, and the old one is retired."""
        assert self.pending is not None
        new, self.pending = self.pending, None
        old, self.serving = self.serving, new.number
        members = self._members(new.number)
        pids = sorted(member.pid for member in members)
        seconds = round(time.monotonic() - new.requested, 3)
        where = f"generation {new.number}, pid{'s' if len(pids) > 1 else ''} {', '.join(map(str, pids))}"
        if old is None:
            self.events.emit(
                "ready",
                f"ready in {seconds:.2f} s ({where})",
                seconds=seconds,
                pids=pids,
                generation=new.number,
                preloaded=self.preloaded.count,
                preloaded_packages=self.preloaded.packages,
                preload_seconds=self.preloaded.seconds,
            )
        else:
            line = f"reloaded in {seconds:.2f} s ({where})"
            self.events.emit("reloaded", line, seconds=seconds, pids=pids, generation=new.number)
        self.crashes = Crashes()  # new code: its crashes count afresh
        old_ones = [c for c in self.children.values() if c.generation != new.number and not c.stopping]
        for record in old_ones:
            self.retiring.setdefault(record.generation, []).append(record.pid)
        self._stop(old_ones)
        self._after_reload()

    def _fail_pending(self, error: str, tb: str) -> None:
        """The pending generation failed: stop what is left of it; the serving one goes on."""
        assert self.pending is not None
        failed, self.pending = self.pending, None
        self._stop(self._members(failed.number))
        still = f"generation {self.serving} still serves" if self.serving else "nothing serves: fix, SIGHUP"
        self.events.emit(
            "reload_failed",
            f"generation {failed.number} failed: {error} ({still})",
            error=error,
            traceback=tb,
            generation=failed.number,
            serving=self.serving,
        )
        self._after_reload()
        self._check_done()

    def _after_reload(self) -> None:
        if self.again is not None:
            requested, self.again = self.again, None
            self.reload(requested)

    def _note_retired(self, generation: int) -> None:
        left = any(c.generation == generation for c in self.children.values())
        if generation in self.retiring and not left:
            pids = self.retiring.pop(generation)
            if self.final is None:
                line = f"generation {generation} stopped"
                self.events.emit("retired", line, generation=generation, pids=pids)

    # --- crashes and the end -------------------------------------------------------------------

    def _crashed(self, record: Child, code: int) -> None:
        """A serving child exited by itself: replace it after the backoff, or give up."""
        if self.options.restart == "no" or (self.options.restart == "on-failure" and code == 0):
            self.declined = True
            return
        delay = self.crashes.crashed(record.started, time.monotonic())
        if (quick := self.crashes.quick) >= self.options.max_quick_crashes:
            line = f"gave up after {quick} quick crashes in a row"
            self.events.emit("gave_up", line, crashes=quick, generation=record.generation)
            self.shutdown(EXIT_GAVE_UP, None)
            return
        self.replacing += 1
        self._at(delay, lambda: self._replace(record))

    def _replace(self, old: Child) -> None:
        self.replacing -= 1
        if self.final is None and old.generation == self.serving:
            self._fork(old.generation, replaces=old.pid)
        self._check_done()

    def _check_done(self) -> None:
        """Exit once stopping and no child is left; or when nothing serves and nothing will."""
        if self.final is not None:
            if not self.children:
                code, event = self.final
                if event is not None:
                    self.events.emit(event, event)
                self.exit_code = code
            return
        idle = not self.children and self.pending is None and not self.replacing
        if idle and (self.options.restart == "no" or self.declined):
            self.events.emit("gave_up", "no child left to serve, and none is restarted", crashes=0)
            self.shutdown(EXIT_GAVE_UP, None)

    def shutdown(self, code: int, event: str | None) -> None:
        """Stop every child (SIGKILL after STOP_GRACE), then exit with `code` after `event`."""
        if self.final is not None:
            self._kill(list(self.children))  # asked again: no more grace
            return
        self.final = (code, event)
        self.pending = None
        self.sock.close()
        self._stop(list(self.children.values()))
        self._check_done()
