"""`invoke dev`: bring the stack up as `up` does, then keep it in line with the code while a
developer works, until Ctrl-C.

Each tick the loop takes the watcher's debounced changes, the warm API's events, the crashes it
sees, and the components' new log lines, and hands them to the view. An edit under the API's
sources is a reload of the warm server (the old code serves until the new answers); anything
else that changed (the stack file, a migration, a process's files) re-plans and converges with
the same code as `up`. A crashed component is brought back with backoff, as often as its
restart policy allows.

What the loop knows and shows of each component is `ops.dev_components`'s; the warm server's
reloads and events are `ops.dev_reload`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ops import api
from ops.api_workers import Workers
from ops.backends import DatabaseBackend
from ops.dev_components import RESTARTING, Live, last_lines, liveness, log_tail, note_crash, rows
from ops.dev_reload import WarmReloads
from ops.dev_view import ComponentRow, View
from ops.endpoint import Endpoint
from ops.errors import OpsError
from ops.logmux import LogFollower
from ops.plan import api_fingerprint
from ops.secrets import redact
from ops.settings import Settings
from ops.stack import declared_stack, down, up
from ops.stackfile import StackFile
from ops.state import StackState, load_state_or_fresh, save_state, stack_lock
from ops.watch import STACK, Debouncer, Target, Watcher, affected, targets

TICK_S = 0.25  # the longest the loop sleeps; a change wakes it at once
CHECK_EVERY_S = 0.5  # crash checks (is the process there?)
PROBE_EVERY_S = 10.0  # the API's /health (each probe is a line in its log); also after each change


class DevLoop:
    def __init__(
        self,
        settings: Settings,
        view: View,
        seed: Callable[[Endpoint], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.view, self.seed, self._clock = settings, view, seed, clock
        self.stack: StackFile = declared_stack(settings)
        self.live: dict[str, Live] = {}
        self.state = StackState()
        self.follower = LogFollower({}, [])
        self.warm = WarmReloads(settings, view)  # the API's reloads, and the warm server's events
        self._next_check = self._next_probe = 0.0
        self._backend: DatabaseBackend | None = None  # made once a stack exists; again after each converge
        self.workers: Workers | None = None  # the API's, when it has several (counted at each check)
        self.targets: list[Target] = []  # what is watched: the fingerprints' inputs and the stack file

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        self.targets = targets(self.settings, self.stack)
        watcher = Watcher(self.settings.project_dir, self.targets).start()
        self.converge("start")  # an edit made meanwhile is in the watcher's queue
        debouncer = Debouncer()
        try:
            while True:
                debouncer.add(watcher.wait(debouncer.quiet_s if debouncer.pending else TICK_S))
                batch = debouncer.batch()
                if batch and self.on_changes(batch):
                    watcher.stop()  # the stack file changed: watch what it now declares
                    self.targets = targets(self.settings, self.stack)
                    watcher = Watcher(self.settings.project_dir, self.targets).start()
                self.read_api_events()
                if self._clock() >= self._next_check:
                    self._next_check = self._clock() + CHECK_EVERY_S
                    self.check_components()
                self.view.log(self.follower.poll())
                self.view.update(self.rows())
        finally:
            watcher.stop()

    def converge(self, why: str) -> bool:
        """`up` with the warm API; a failure is shown, and the loop goes on watching."""
        for name in self._names():
            if self._live(name).status not in ("healthy", "broken"):  # the plan says what changes
                self._live(name).status = "starting"
        self.view.update(self.rows())
        self._forget_backend()
        try:
            up(self.settings, emit=self.view.say, seed=self.seed, stack=self.stack, warm_api=True)
        except OpsError as failed:
            self.view.alert(f"{why}: {redact(failed.one_line())}", last_lines(redact(failed.evidence)))
            self._reload_state()
            return False
        self.view.alert("", None)
        self._reload_state()
        self._count_workers()
        self._next_probe = 0.0
        for name in self._names():
            live = self._live(name)
            if live.status == "starting" and f"; {RESTARTING} in" in live.note:
                live.note = f"restarted after a crash ({live.backoff.restarts} so far)"
            live.status, live.down_since, live.short_since = "healthy", None, None
        return True

    def on_changes(self, paths: list[str]) -> bool:
        """React to one debounced batch; True when the stack file changed (re-read and re-watched)."""
        records = [self.state.api, *self.state.processes.values()]
        known = {name for record in records for name in (record.fingerprint or {}).get("files", {})}
        paths = [
            p for p in paths if (self.settings.project_dir / p).exists() or p in known
        ]  # not editors' temp files
        hits = affected(self.targets, paths)
        if not hits:
            return False
        api_name = self._api_name()
        files = ", ".join(sorted({p for ps in hits.values() for p in ps})[:3])
        if set(hits) == {api_name} and self._reload_api(hits[api_name]):
            return False
        if STACK in hits:
            try:
                self.stack = declared_stack(self.settings)
            except OpsError as bad:
                self.view.alert(
                    f"{STACK}: {bad.one_line()}",
                    "fix it and save: the stack keeps running as declared before",
                )
                return False
        self.view.say(f"{', '.join(sorted(hits))} changed ({files}): converging")
        self.converge("after " + files)
        return STACK in hits

    # --- the API's warm reloads ----------------------------------------------------------------

    def _reload_api(self, paths: list[str]) -> bool:
        return self.warm.reload(self.state.api, self._live(self._api_name()), paths)

    def read_api_events(self) -> None:
        name = self._api_name()
        self.warm.read_events(name, self._live(name), self.state.api, self._reloaded)

    def _reloaded(self) -> None:
        self._next_probe = 0.0
        self._record_api_fingerprint()

    def _record_api_fingerprint(self) -> None:
        """The reloaded code is what runs now: a later `up` keeps it."""
        with stack_lock(self.settings.state_dir, wait_seconds=5):
            state = load_state_or_fresh(self.settings.state_file)
            state.api.fingerprint = api_fingerprint(self.settings, self.stack, state).as_record()
            save_state(self.settings.state_file, state)
            self.state = state

    # --- crashes -------------------------------------------------------------------------------

    def check_components(self) -> None:
        """Notice what died, show its log's tail, and converge again once its backoff is over."""
        self._reload_state()
        due, short = [], None
        running = self._database_running()
        for seen in liveness(self.settings, self.stack, self.state, running):
            name, live = seen.name, self._live(seen.name)
            if seen.alive:
                live.down_since = None
                if live.status in ("crashed", "stopped", "starting"):
                    live.status = "healthy"
                if name == self._api_name():
                    short = self._heal_workers(name, live)
                    self._probe_health(live)
                continue
            if live.status == "failed":
                continue
            if live.down_since is None:
                exited = note_crash(live, seen, self._clock)
                self.view.say(f"{name} {live.note}")
                self.view.alert(f"{name} {exited}", last_lines(log_tail(seen.log)))
            if live.status == "crashed" and live.backoff.due():
                live.backoff.restarting()
                due.append(name)
        if due:
            self.view.say(f"restarting {', '.join(due)}")
        if short is not None:
            self.view.say(f"{self._api_name()}: {short}; reloading it")
        if due or short is not None:
            why = "; ".join(filter(None, ["restart of " + ", ".join(due) if due else "", short]))
            if self.converge(why) and short is not None:
                self._live(self._api_name()).note = f"reloaded after {short}"

    def _probe_health(self, live: Live) -> None:
        """The API's /health, every PROBE_EVERY_S and after each change (not during a reload)."""
        if self.warm.pending is not None or self._clock() < self._next_probe:
            return
        self._next_probe = self._clock() + PROBE_EVERY_S
        health = api.probe(api.recorded_url(self.settings, self.state), timeout=0.5)
        live.health = f"/health {health.status or 'no answer'}"
        if live.status in ("healthy", "unhealthy"):
            live.status = "healthy" if health.status == 200 else "unhealthy"

    def _heal_workers(self, name: str, live: Live) -> str | None:
        """With several workers: count them for the view, `degraded` while some are missing. Returns the
        shortfall when a reload is due here: a warm server `up` started (--restart no) forks none again
        itself, so dev converges, which reloads it; after a backoff when that keeps failing."""
        record = self.state.api
        self._count_workers()
        if self.workers is None or self.workers.complete:
            live.short_since = None
            if live.status == "degraded":
                live.status = "healthy"
            return None
        short = self.workers.shortfall()
        if live.status == "healthy":
            live.status = "degraded"
        if record.restart != "no" or self.warm.pending is not None:
            return None  # the warm server forks it again itself, or a reload is under way
        if live.short_since is None:
            live.short_since = self._clock()
            if live.backoff.crashed() is None:
                live.note = f"{short}; healed too often, not reloaded again"
                self.view.say(f"{name}: {live.note}")
        if live.backoff.due():
            live.backoff.restarting()
            return short
        return None

    def _forget_backend(self) -> None:
        close = getattr(self._backend, "close", None)  # the docker backend's engine client
        if callable(close):
            close()
        self._backend = None

    def _database_running(self) -> bool | None:
        """Whether the server the harness runs is up (the postmaster, or the container); None when
        it is not ours (external) or the engine does not answer."""
        if self.state.db.backend not in ("embedded", "docker"):
            return None
        if self._backend is None:
            from ops.backends import select_backend

            self._backend, _ = select_backend(self.settings, self.state, emit=lambda _line: None)
        try:
            return self._backend.is_running()
        except OpsError:
            return None

    def _count_workers(self) -> None:
        record = self.state.api
        self.workers = api.workers(self.settings, record) if api.expected_workers(record) > 1 else None

    # --- what the view shows -------------------------------------------------------------------

    def rows(self) -> list[ComponentRow]:
        return rows(self.stack, self.state, self.live, self.workers)

    # --- helpers -------------------------------------------------------------------------------

    def _reload_state(self) -> None:
        self.state = load_state_or_fresh(self.settings.state_file)
        self._follow_logs()

    def _follow_logs(self) -> None:
        """Follow each component's log: from its end at dev's start, from its start once dev has
        started the component (its log is new then)."""
        self.follower.secrets = self.state.secrets
        later = bool(self.follower.paths)
        for name in self._names():
            kind = self.stack.components[name].kind
            log = {"postgres": "db", "asgi": "api", "alembic": "migrate"}.get(kind, name)
            path = self.settings.log_file(log)
            if kind in ("postgres", "asgi", "alembic", "process") and name not in self.follower.paths:
                self.follower.add(name, path, from_start=later)
        for name in set(self.follower.components) - set(self._names()):
            self.view.log(self.follower.poll())
            self.follower.remove(name)

    def _names(self) -> list[str]:
        return list(self.stack.order)

    def _live(self, name: str) -> Live:
        return self.live.setdefault(name, Live())

    def _api_name(self) -> str:
        return self.stack.of_kind("asgi")[0][0]

    def _db_name(self) -> str:
        return self.stack.of_kind("postgres")[0][0]


def run_dev(
    settings: Settings,
    view: View,
    stop_on_exit: bool = False,
    seed: Callable[[Endpoint], str] | None = None,
) -> None:
    """The loop until Ctrl-C or SIGTERM; the stack is left running unless `stop_on_exit`."""
    from ops.signals import sigterm_as_interrupt

    loop = DevLoop(settings, view, seed)
    try:
        with sigterm_as_interrupt():
            loop.run()
    except KeyboardInterrupt:
        pass
    if stop_on_exit:
        view.say("stopping the stack (--down)")
        down(settings, emit=view.say)
    else:
        view.say("the stack keeps running (`invoke down` stops it)")
