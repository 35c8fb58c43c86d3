"""What `up` will do to each component and why, from the stack file, the state and live probes.

`invoke up --plan` prints it and changes nothing; `invoke up` prints it and carries it out.
The API's inputs are fingerprinted (its declaration, the settings it uses, the content of its
sources), so an edit under `app/` is a restart that names the file, not a silent skip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ops import api
from ops.api_workers import Workers, expected
from ops.backends.base import DatabaseBackend
from ops.endpoint import Endpoint
from ops.fingerprint import Fingerprint, take, what_changed
from ops.settings import Settings
from ops.stackfile import StackFile
from ops.state import StackState

KEEP, START, RESTART, APPLY, RUN, STOP = "keep", "start", "restart", "apply", "run", "stop"
RELOAD = "reload"  # the warm server forks a new generation on the same socket (SIGHUP)


@dataclass(frozen=True)
class Action:
    component: str
    verb: str
    reason: str = ""

    @property
    def changes(self) -> bool:
        return self.verb != KEEP

    def line(self) -> str:
        return f"{self.component}: {self.verb}" + (f" — {self.reason}" if self.reason else "")


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]

    def of(self, component: str) -> Action | None:
        return next((action for action in self.actions if action.component == component), None)

    def lines(self) -> list[str]:
        return [action.line() for action in self.actions]


def api_fingerprint(settings: Settings, stack: StackFile, state: StackState) -> Fingerprint:
    """The API's inputs now: its part of the stack file, the settings it runs with, its sources."""
    _, declared = stack.of_kind("asgi")[0]
    uses = {
        "app": settings.app,
        "api_host": settings.api_host,
        "api_port": settings.api_port if settings.api_port_fixed else None,
    }
    if settings.read_database_url:  # a digest, not the URL itself: it holds a password
        uses["read_database"] = _digest(settings.read_database_url)
    if settings.api_workers != 1:  # absent at one, so that an API started before workers is kept
        uses["api_workers"] = settings.api_workers
    declaration = {"component": declared.model_dump(mode="json"), "settings": uses}
    previous = Fingerprint.from_record(state.api.fingerprint)
    return take(settings.project_dir, declaration, declared.sources, previous)


def _digest(secret: str | None) -> str | None:
    import hashlib

    return hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else None


def make_plan(
    settings: Settings,
    stack: StackFile,
    state: StackState,
    backend: DatabaseBackend | None,
    schema: Callable[[Endpoint], tuple[str | None, str | None]],
    endpoint: Endpoint | None,
    warm_api: bool = False,
) -> Plan:
    """One action per declared component. `backend` is None when `up` has yet to choose one;
    `schema(endpoint)` gives (current revision, head) of a running database; `warm_api`: the API
    is wanted under the warm server (invoke dev)."""
    running = backend is not None and (not backend.owns_server or backend.is_running())
    actions = []
    for name in stack.order:
        kind = stack.components[name].kind
        if kind == "postgres":
            actions.append(_db_action(name, backend, running, state))
        elif kind == "alembic":
            actions.append(_migrate_action(name, running, endpoint, schema))
        elif kind == "seed":
            actions.append(_seed_action(name, settings, stack, running))
        elif kind == "asgi":
            actions.append(_api_action(name, settings, stack, state, running, warm_api))
        elif kind == "process":
            actions.append(_process_action(name, settings, stack, state))
    for name in state.processes:
        if name not in stack.components:
            actions.append(Action(name, STOP, "removed from the stack file"))
    return Plan(tuple(actions))


def _db_action(name: str, backend: DatabaseBackend | None, running: bool, state: StackState) -> Action:
    if backend is None:
        return Action(name, START, "a new stack; `up` chooses the backend (auto)")
    if not backend.owns_server:
        server = backend.describe()
        servers = "servers" if len(server.hosts) > 1 else "server"
        return Action(name, KEEP, f"an external {servers} at {server.where}")
    if running:
        where = f"pid {state.db.pid}" if state.db.pid else f"container {state.db.container_name}"
        return Action(name, KEEP, f"{backend.name}, {where} on port {state.db.port}")
    return Action(name, START, f"{backend.name}, not running" if state.db.port else f"{backend.name}, new")


def _migrate_action(
    name: str,
    running: bool,
    endpoint: Endpoint | None,
    schema: Callable[[Endpoint], tuple[str | None, str | None]],
) -> Action:
    if not running or endpoint is None:
        return Action(name, APPLY, "to head, once the database runs")
    current, head = schema(endpoint)
    if current == head:
        return Action(name, KEEP, f"at head {head}")
    return Action(name, APPLY, f"{current or 'base'} -> {head}")


def _seed_action(name: str, settings: Settings, stack: StackFile, running: bool) -> Action:
    when = stack.components[name].when
    if not settings.seed or when == "never":
        return Action(name, KEEP, "seeding is off")
    return Action(name, RUN, "always" if when == "always" else "if the database is empty")


def _api_action(
    name: str, settings: Settings, stack: StackFile, state: StackState, db_running: bool, warm: bool
) -> Action:
    pid = state.api.pid
    if not api.is_ours(pid, settings):
        return Action(name, START, "not running")
    recorded = Fingerprint.from_record(state.api.fingerprint)
    changed = what_changed(recorded, api_fingerprint(settings, stack, state))
    if changed:
        return Action(name, RESTART, f"{changed} since pid {pid} started")
    if api.serves_warm(warm) and state.api.server != "warm":
        return Action(name, RESTART, f"pid {pid} is plain uvicorn; dev serves the API warm, to reload fast")
    if expected(state.api) > 1:
        healing = degraded_action(name, api.workers(settings, state.api), state.api.server == "warm")
        if healing is not None:
            return healing
    health = api.probe(api.recorded_url(settings, state))
    if health.status == 200:
        return Action(name, KEEP, f"pid {pid} healthy on {state.api.url}")
    if not db_running:  # it answers again once the database is back (else api-health restarts it)
        return Action(name, KEEP, f"pid {pid}, healthy again once the database runs")
    return Action(name, RESTART, f"pid {pid} answers /health {health.status or 'nothing'}")


def degraded_action(name: str, workers: Workers, warm: bool) -> Action | None:
    """What heals an API with workers missing: the warm server forks a new generation of them on the
    same socket (the old one retired once it is ready); plain uvicorn is restarted. None: all serve."""
    short = workers.shortfall()
    if short is None:
        return None
    return Action(name, RELOAD if warm else RESTART, short)


def _process_action(name: str, settings: Settings, stack: StackFile, state: StackState) -> Action:
    from ops import processes

    record = state.processes.get(name)
    if record is None:
        return Action(name, START, "new in the stack file")
    if not processes.is_ours(settings, name, record.pid):
        return Action(name, START, "not running")
    now = processes.fingerprint(settings, name, stack.components[name], record)
    changed = what_changed(Fingerprint.from_record(record.fingerprint), now)
    if changed:
        return Action(name, RESTART, f"{changed} since pid {record.pid} started")
    return Action(name, KEEP, f"pid {record.pid} running")


def describe(plan: Plan) -> list[str]:
    return [f"plan: {line}" for line in plan.lines()]
