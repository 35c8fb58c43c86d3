"""The stack's commands: up (with --plan), down, status and migrate, as steps on one state file."""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ops import api, children, orphans, schema_head
from ops.api_branch import ApiBranch
from ops.backends import DatabaseBackend, Endpoint, select_backend
from ops.dbcheck import first_line, schema_revision, wait_ready
from ops.errors import DatabaseError
from ops.plan import APPLY, KEEP, STOP, Action, Plan, api_fingerprint, describe, make_plan
from ops.report import hooks_for
from ops.roles import ensure_reader
from ops.settings import Settings
from ops.signals import sigterm_as_interrupt
from ops.stackfile import STACK_FILE, Process, StackFile, load_stack_file
from ops.state import (
    ProcessRecord,
    StackState,
    StateProblem,
    StepRecord,
    load_state,
    load_state_or_fresh,
    save_state,
    stack_lock,
)
from ops.steps import Ledger, Step, StepHooks, critical_path, describe_path
from ops.waiting import WaitPolicy

Emit = Callable[[str], None]
CHECKS = frozenset({"db-ready", "api-health"})  # steps that only look, always run
PRELOAD_DELAY_MAX_S = 1.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _warn(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass
class Session:
    """One command's view of the stack: its settings, state, ledger and backend."""

    settings: Settings
    state: StackState
    ledger: Ledger
    command: str
    emit: Emit = print
    plan: Plan | None = None
    warm_api: bool = False  # start the API under the warm server (invoke dev)

    def save(self, steps: list[dict[str, Any]] | None = None) -> None:
        self.state.stack = self.settings.stack
        self.state.last_command = self.command
        self.state.updated_at = _now()
        self.state.steps = [StepRecord(**step) for step in (steps or self.ledger.as_dicts())]
        save_state(self.settings.state_file, self.state)

    def policy(self, timeout: float) -> WaitPolicy:
        s = self.settings
        return WaitPolicy(s.retry_attempts, timeout, s.wait_initial, s.wait_max)


@contextmanager
def session(
    settings: Settings, command: str, emit: Emit, hooks: StepHooks | None = None
) -> Iterator[Session]:
    """Lock the stack, load its state, and save the ledger after every step.

    `hooks` hear of each step (default: GitHub Actions groups and annotations when there).
    """
    with stack_lock(settings.state_dir):
        state = load_state_or_fresh(settings.state_file, _warn)
        ledger = Ledger(emit, hooks=hooks if hooks is not None else hooks_for(emit))
        current = Session(settings, state, ledger, command, emit)
        current.ledger._on_change = current.save
        try:
            yield current
        except KeyboardInterrupt:
            current.ledger.record_interrupt()
            raise
        finally:
            current.save()


@dataclass(frozen=True)
class UpResult:
    api_url: str
    endpoint: Endpoint
    backend: str
    swept: tuple[str, ...] = ()
    # What `ops.noop` certifies: the stack as this `up` left it, which the next `up` would keep.
    certifiable: bool = False  # False when the next `up` would act anyway (a seed run every time)
    sources: tuple[str, ...] = ()  # every file or folder the fingerprints cover, and the stack file
    pids: dict[str, int | None] = field(default_factory=dict)  # of what runs: db (embedded), api, processes
    schema: str | None = None  # the head the API's /health reports
    no_op: tuple[str, ...] = ()  # what an `up` that finds nothing to do prints, before the summary


def up(
    settings: Settings,
    emit: Emit = print,
    seed: Callable[[Endpoint], str] | None = None,
    hooks: StepHooks | None = None,
    stack: StackFile | None = None,
    warm_api: bool = False,
) -> UpResult:
    """Bring the stack in line with its declaration: print the plan, then carry it out, the API's
    steps in a branch beside the database's (`ops.api_branch`). `warm_api`: the API runs under the
    warm server (`invoke dev`), and a plain uvicorn found running is restarted under it."""
    stack = stack or declared_stack(settings)
    with sigterm_as_interrupt(), session(settings, "up", emit, hooks) as run:
        run.warm_api = warm_api
        backend, why = select_backend(settings, run.state, emit)
        emit(f"backend: {backend.name} ({why})")
        run.plan = _plan(run, stack, backend)
        for line in describe(run.plan):
            emit(line)
        swept: list[str] = []
        endpoint, api_url = _converge_db_and_api(run, backend, why, swept, stack, seed)
        _process_steps(run, stack, endpoint, api_url)
        _critical_path(run)
        return UpResult(api_url, endpoint, backend.name, tuple(swept), *_what_runs(run, stack, swept))


def _what_runs(
    run: Session, stack: StackFile, swept: list[str]
) -> tuple[bool, tuple[str, ...], dict[str, int | None], str | None, tuple[str, ...]]:
    """What `ops.noop` certifies after a successful `up`: the next one would keep everything."""
    from ops.watch import targets

    seeds = stack.of_kind("seed")
    certifiable = not (run.settings.seed and seeds and stack.components[seeds[0][0]].when == "always")  # type: ignore[attr-defined]
    sources = tuple(sorted({source for target in targets(run.settings, stack) for source in target.sources}))
    pids: dict[str, int | None] = {"api": run.state.api.pid}
    pids.update(api.workers(run.settings, run.state.api).certified())  # a dead worker voids it
    if run.state.db.backend == "embedded":
        pids["db"] = run.state.db.pid
    pids.update({name: record.pid for name, record in run.state.processes.items()})
    declared = set(stack.components) | {"db-ready", "api-start", "api-health"}
    steps = [step.name for step in run.ledger.steps if step.name in declared]
    no_op = [f"plan: {name}: keep — as the last `up` left it" for name in stack.order]
    no_op += [f"::STEP::{name}::{'OK' if name in CHECKS else 'SKIP'}" for name in steps]
    return certifiable, sources, pids, schema_head.head(run.settings.project_dir, run.state), tuple(no_op)


def _converge_db_and_api(
    run: Session,
    backend: DatabaseBackend,
    why: str,
    swept: list[str],
    stack: StackFile,
    seed: Callable[[Endpoint], str] | None,
) -> tuple[Endpoint, str]:
    """The database's steps here, the API's in their branch; both end together."""
    branch = _api_branch(run, backend, stack, swept)
    try:
        try:
            endpoint = _db_steps(run, backend, why, swept, branch)
        finally:
            backend.save_log()
        if seed is not None and run.settings.seed:
            branch.check()
            with run.ledger.step("seed") as step:
                step.detail = seed(endpoint)
                if step.detail.startswith("already"):
                    step.skip(step.detail)
        branch.check()
        branch.database_done()
        api_url = branch.join()
    except BaseException:
        branch.abort()
        raise
    if branch.moved(endpoint):  # the database did not get the port planned: start the API again
        again = _api_branch(run, backend, stack, swept, keep=False)
        again.launch(endpoint)
        again.database_done()
        api_url = again.join()
    return endpoint, api_url


def _api_branch(
    run: Session, backend: DatabaseBackend, stack: StackFile, swept: list[str], keep: bool | None = None
) -> ApiBranch:
    settings = run.settings
    planned = run.plan.of(stack.of_kind("asgi")[0][0]) if run.plan else None
    return ApiBranch(
        run,
        backend,
        keep=(planned is None or planned.verb == KEEP) if keep is None else keep,
        fingerprint=lambda: api_fingerprint(settings, stack, run.state),
        sweep=lambda: _sweep(run, "api", swept),
        now=_now,
    )


def _critical_path(run: Session) -> None:
    """What the command's time went to, when it did any work (a no-op says nothing more)."""
    chain = critical_path(run.ledger.steps)
    if any(step.status == "OK" and step.name not in CHECKS for step in run.ledger.steps):
        run.emit(describe_path(chain))


def endpoint_values(endpoint: Endpoint, api_url: str | None) -> dict[str, str]:
    """What `{db.url}`, `{api.url}` and kin stand for in a declared process's command and env."""
    values = {
        "db.url": endpoint.url().replace("postgresql+psycopg://", "postgresql://", 1),
        "db.host": endpoint.host,
        "db.port": str(endpoint.port),
        "db.database": endpoint.database,
        "db.user": endpoint.user,
    }
    if api_url:
        host, _, port = api_url.removeprefix("http://").rpartition(":")
        values.update({"api.url": api_url, "api.host": host, "api.port": port})
    return values


def _process_steps(run: Session, stack: StackFile, endpoint: Endpoint, api_url: str) -> None:
    """Each declared process as the plan says: started, restarted, kept or (removed) stopped."""
    if not run.plan or not (run.state.processes or stack.of_kind("process")):
        return
    values = _named(endpoint_values(endpoint, api_url), stack)
    for action in run.plan.actions:
        declared = stack.components.get(action.component)
        if action.verb == STOP:
            with run.ledger.step(action.component) as step:
                step.detail = _stop_removed(run, action.component)
        elif declared is not None and declared.kind == "process":
            with run.ledger.step(action.component) as step:
                _converge_process(run, step, action, declared, values)


def _stop_removed(run: Session, name: str) -> str:
    from ops import processes

    record = run.state.processes.pop(name)
    if processes.is_ours(run.settings, name, record.pid) and children.stop(record.pid):
        return f"stopped pid {record.pid}: removed from the stack file"
    return "removed from the stack file (it was not running)"


def _converge_process(
    run: Session, step: Step, action: Action, declared: Process, values: dict[str, str]
) -> None:
    from ops import processes

    settings, name = run.settings, action.component
    record = run.state.processes.get(name)
    running = record is not None and processes.is_ours(settings, name, record.pid)
    if action.verb == KEEP and running:
        step.skip(action.reason)
        return
    if running and record is not None:
        children.stop(record.pid)
    for line in orphans.sweep(settings, run.state, [name]):
        run.emit(f"swept: {line}")
    pid = processes.start(settings, name, declared, values)
    run.state.processes[name] = ProcessRecord(
        pid=pid,
        log=str(processes.log_path(settings, name)),
        started_at=_now(),
        fingerprint=processes.fingerprint(settings, name, declared, record).as_record(),
    )
    policy = run.policy(settings.api_health_timeout)
    try:
        ready, step.attempts = processes.wait_ready(settings, name, pid, declared.ready, policy, values)
    except BaseException:
        children.stop(pid)
        run.state.processes[name].pid = None
        raise
    step.detail = f"pid {pid}: {ready}"


def _named(values: dict[str, str], stack: StackFile) -> dict[str, str]:
    """The values under the names the stack file gives its postgres and asgi components."""
    (db_name, _), *_ = stack.of_kind("postgres")
    api_names = [name for name, _ in stack.of_kind("asgi")]
    renamed = {}
    for key, value in values.items():
        component, _, attr = key.partition(".")
        name = db_name if component == "db" else (api_names[0] if api_names else "api")
        renamed[f"{name}.{attr}"] = value
    return renamed


def declared_stack(settings: Settings) -> StackFile:
    """The project's stack file (`stack.toml`), validated; exit 2 naming the key when it is not."""
    return load_stack_file(settings.project_dir / STACK_FILE)


def plan(settings: Settings, stack: StackFile | None = None) -> Plan:
    """`up --plan`: what `up` would do and why. Takes no lock, starts, pulls or writes nothing."""
    stack = stack or declared_stack(settings)
    state = load_state_or_fresh_readonly(settings)
    backend = None
    if state.db.backend or settings.backend != "auto":
        backend, _ = select_backend(settings, state)
    return make_plan(
        settings, stack, state, backend, _schema_of(settings, state), writer_endpoint(settings, state)
    )


def load_state_or_fresh_readonly(settings: Settings) -> StackState:
    try:
        return load_state(settings.state_file)
    except StateProblem:
        return StackState()


def _plan(run: Session, stack: StackFile, backend: DatabaseBackend) -> Plan:
    endpoint = writer_endpoint(run.settings, run.state)
    schema = _schema_of(run.settings, run.state)
    return make_plan(run.settings, stack, run.state, backend, schema, endpoint, warm_api=run.warm_api)


def _schema_of(settings: Settings, state: StackState) -> Callable[[Endpoint], tuple[str | None, str | None]]:
    def schema(endpoint: Endpoint) -> tuple[str | None, str | None]:
        import psycopg

        head = schema_head.head(settings.project_dir, state)
        try:
            return schema_revision(endpoint, timeout=2), head
        except psycopg.Error:
            return "unknown (the database does not answer)", head

    return schema


def _sweep(run: Session, component: str, swept: list[str]) -> None:
    """Stop this stack's orphaned `component` before starting its replacement, and say so."""
    for line in orphans.sweep(run.settings, run.state, [component]):
        run.emit(f"swept: {line}")
        swept.append(line)


def _preload_migrations(run: Session, after: threading.Event) -> threading.Thread | None:
    """When the plan applies migrations, import Alembic (and SQLAlchemy) in the background while the
    database starts, once `after` is set (uvicorn spawned: the import would hold the GIL the API
    branch needs); this thread is the only one importing them until the migrate step joins it."""
    planned = [a for a in (run.plan.actions if run.plan else ()) if a.verb == APPLY]
    if not planned or "ops.migrate" in sys.modules:
        return None

    def preload_after() -> None:
        after.wait(PRELOAD_DELAY_MAX_S)
        importlib.import_module("ops.migrate")

    preload = threading.Thread(target=preload_after, daemon=True)
    preload.start()
    return preload


def _db_steps(
    run: Session, backend: DatabaseBackend, why: str, swept: list[str], branch: ApiBranch
) -> Endpoint:
    settings, ledger = run.settings, run.ledger
    with ledger.step("db") as step:
        branch.launch(backend.planned_endpoint())  # uvicorn first: its import is the longest wait
        preload = _preload_migrations(run, branch.spawned)
        if backend.owns_server and not backend.is_running():
            _sweep(run, "db", swept)
        started = backend.start()
        run.state.db = started.record
        branch.address_known(started.endpoint)
        step.detail = f"{backend.name} ({why}): {started.detail}"
        if started.reused:
            step.skip(step.detail)
    endpoint = started.endpoint.for_writes()  # migrations, grants and the seed need the read-write server
    branch.check()
    with ledger.step("db-ready") as step:
        step.detail, step.attempts = wait_ready(
            endpoint, run.policy(settings.db_ready_timeout), backend.assert_alive
        )
    branch.check()
    if preload is not None:
        preload.join()  # before anything else may import SQLAlchemy (migrate, seed)
    with ledger.step("migrate") as step:
        head = schema_head.head(settings.project_dir, run.state)
        if schema_revision(endpoint, timeout=2) == head:  # no Alembic needed to see that
            applied = False
            step.skip(f"schema already at head {head}")
        else:
            from ops.migrate import migrate

            result = migrate(
                settings.project_dir,
                endpoint.url(),
                "head",
                run.policy(settings.migrate_timeout),
                backend.assert_alive,
                settings.logs_dir / "migrate.log",
            )
            step.attempts = result.attempts
            applied = result.direction != "none"
            step.detail = f"{result.before or 'base'} -> {result.after}"
            if not applied:
                step.skip(f"schema already at head {result.after}")
        if backend.owns_server and (applied or not branch.keep):
            ensure_reader(endpoint, branch.reader_password)  # the API's role and its grants
    return endpoint


def down(
    settings: Settings, volumes: bool = False, emit: Emit = print, hooks: StepHooks | None = None
) -> list[str]:
    """Stop the API and PostgreSQL, keeping the data unless `volumes`. Returns what was done."""
    done: list[str] = []
    with session(settings, "down", emit, hooks) as run:
        for name, record in list(run.state.processes.items()):
            with run.ledger.step(f"{name}-stop") as step:
                if stop_declared(settings, name, record):
                    step.detail = f"stopped pid {record.pid}"
                    done.append(f"{name}: {step.detail}")
                else:
                    step.skip("not running")
                record.pid = None
        with run.ledger.step("api-stop") as step:
            recorded = run.state.api.pid
            stopped = [f"stopped pid {recorded}"] if stop_recorded_api(settings, run.state.api) else []
            stopped += orphans.sweep(settings, run.state, ["api", *run.state.processes])
            if stopped:
                step.detail = "; ".join(stopped)
                done.append(f"api: {step.detail}")
            else:
                step.skip("not running")
        if _backend_recorded_or_set(settings, run.state) == "external":
            return done  # an external server is not ours to stop
        backend, _ = select_backend(settings, run.state)
        with run.ledger.step("db-stop") as step:
            stopped = [f"{backend.name} stopped, data kept"] if backend.stop() else []
            run.state.db = backend.record
            stopped += orphans.sweep(settings, run.state, ["db"])
            if stopped:
                step.detail = "; ".join(stopped)
                done.append(f"db: {step.detail}")
            else:
                step.skip(f"{backend.name} not running")
        if volumes:
            with run.ledger.step("volumes") as step:
                destroyed = backend.destroy()
                run.state.db = backend.record
                if destroyed:
                    step.detail = f"{backend.name} data deleted"
                    done.append(f"db: {step.detail}")
                else:
                    step.skip("no data")
    return done


def stop_declared(settings: Settings, name: str, record: ProcessRecord) -> bool:
    from ops import processes

    return processes.is_ours(settings, name, record.pid) and children.stop(record.pid)


def stop_recorded_api(settings: Settings, record: ProcessRecord) -> bool:
    pid, record.pid = record.pid, None
    return api.is_ours(pid, settings) and api.stop(pid)


def _backend_recorded_or_set(settings: Settings, state: StackState) -> str:
    return str(state.db.backend or settings.backend)


def remove_all_labelled(dry_run: bool = False) -> list[str]:
    """`down --all`: every process the harness marked and every Docker container and volume it
    labelled, of any stack and checkout, each named with the checkout it belonged to.
    With `dry_run`, only what would be stopped and removed is listed."""
    from ops.backends.docker import remove_all
    from ops.engine import try_connect

    marked = orphans.every_stack()
    if dry_run:
        done = [f"would stop {mark.describe()}" for mark in marked]
    else:
        done = [f"stopped {mark.describe()}" for mark in marked if orphans.stop(mark)]
    client, reason = try_connect()
    if client is None:
        return [*done, f"docker: nothing removed ({reason})"]
    try:
        verb = "would remove" if dry_run else "removed"
        return done + [f"{verb} {item}" for item in remove_all(client, dry_run)]
    finally:
        client.close()


@dataclass(frozen=True)
class Component:
    name: str
    healthy: bool
    line: str
    facts: dict[str, Any]


def status(settings: Settings) -> list[Component]:
    """One entry per component, from the state file and live probes with short timeouts."""
    state = load_state_or_fresh(settings.state_file, _warn)
    declared = [_process_status(settings, name, record) for name, record in state.processes.items()]
    return [_db_status(settings, state), _api_status(settings, state), *declared]


def _process_status(settings: Settings, name: str, record: ProcessRecord) -> Component:
    from ops import processes

    facts: dict[str, Any] = {"pid": record.pid, "log": record.log}
    if not processes.is_ours(settings, name, record.pid):
        return Component(name, False, f"not running (log: {processes.log_path(settings, name)})", facts)
    return Component(name, True, f"pid {record.pid} running since {record.started_at}", facts)


def recorded_endpoint(settings: Settings, state: StackState) -> Endpoint | None:
    db = state.db
    if not db.port or db.password is None:
        return None
    return Endpoint(
        db.host or settings.db_host,
        db.port,
        db.user or settings.db_user,
        db.password,
        db.database or settings.db_name,
        dict(db.params),
        tuple((host, int(port)) for host, port in db.more_hosts),
    )


def writer_endpoint(settings: Settings, state: StackState) -> Endpoint | None:
    """The recorded endpoint for connections that write (a multi-host DSN's read-write server)."""
    endpoint = recorded_endpoint(settings, state)
    return None if endpoint is None else endpoint.for_writes()


def _db_status(settings: Settings, state: StackState) -> Component:
    import psycopg

    endpoint = recorded_endpoint(settings, state)
    backend_name = state.db.backend or "none"
    if endpoint is None:
        return Component("db", False, "not started (run `invoke up`)", {"backend": backend_name})
    where = endpoint.where
    facts: dict[str, Any] = {"backend": backend_name, "host": endpoint.host, "port": endpoint.port}
    writer = endpoint.for_writes()
    try:
        revision = schema_revision(writer, timeout=2)
        primary = _primary_note(writer, facts) if endpoint.more_hosts else ""
    except psycopg.Error as exc:
        from ops.servers import failures

        reason = failures(exc) if endpoint.more_hosts else first_line(exc)
        return Component("db", False, f"{backend_name} {where} unreachable: {reason}", facts)
    head = schema_head.head(settings.project_dir, state)
    facts.update(schema=revision, head=head)
    at_head = revision == head
    schema = f"schema {revision} (head)" if at_head else f"schema {revision}, head is {head}"
    return Component("db", at_head, f"{backend_name} {where} ready, {schema}{primary}", facts)


def _primary_note(writer: Endpoint, facts: dict[str, Any]) -> str:
    """For a multi-host DSN: which host is the primary, and a note when it is not the first one."""
    from app.replication import address
    from ops.servers import reach

    primary = reach(writer)
    facts["primary"] = primary.address
    if (primary.host, primary.port) == writer.hosts[0]:
        return f"; primary {primary.address}"
    first = address(*writer.hosts[0])
    return f"; primary {primary.address}, not the DSN's first host {first} (after a failover?)"


def _api_status(settings: Settings, state: StackState) -> Component:
    pid = state.api.pid
    url = api.recorded_url(settings, state)
    facts: dict[str, Any] = {"pid": pid, "url": url}
    if not api.is_ours(pid, settings):
        return Component("api", False, f"not running (log: {api.log_path(settings)})", facts)
    health = api.probe(url, timeout=2.0)
    facts["health"] = health.status
    healthy = health.status == 200
    answer = f"/health {health.status}" if health.status else f"/health no answer ({health.body})"
    if api.expected_workers(state.api) > 1:  # healthy only with all of them serving
        workers = api.workers(settings, state.api)
        facts.update(workers=workers.expected, worker_pids=list(workers.running))
        if not workers.complete:
            pids = ", ".join(map(str, workers.running)) or "none"
            where = f"supervisor pid {pid}, worker pids {pids}, {url} {answer}; `invoke up` heals it"
            return Component("api", False, f"degraded: {workers.shortfall()} ({where})", facts)
        answer += f", {workers.count()}"
    return Component("api", healthy, f"pid {pid} {url} {answer}", facts)


def migrate_stack(settings: Settings, revision: str, emit: Emit = print) -> str:
    """`invoke migrate -r REVISION` against the running stack."""
    with session(settings, "migrate", emit) as run:
        endpoint = recorded_endpoint(settings, run.state)
        if endpoint is None:
            raise DatabaseError("the stack's database has never been started", "run `invoke up` first")
        endpoint = endpoint.for_writes()
        backend, _ = select_backend(settings, run.state)
        from ops.migrate import migrate

        with run.ledger.step("migrate") as step:
            result = migrate(
                settings.project_dir,
                endpoint.url(),
                revision,
                run.policy(settings.migrate_timeout),
                backend.assert_alive,  # a stopped server is exit 4 at once, not a 30 s wait
                settings.logs_dir / "migrate.log",
            )
            step.attempts = result.attempts
            step.detail = f"{result.before or 'base'} -> {result.after or 'base'}"
            if result.direction == "none":
                step.skip(f"already at {result.after or 'base'}")
        return step.detail
