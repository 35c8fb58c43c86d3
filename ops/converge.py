"""What `up` does to each component, once the plan says so: the database's steps (start, ready,
migrate), and each declared process started, restarted, kept or stopped. `ops.stack.up` orders
them; the API's steps are `ops.api_branch`'s."""

from __future__ import annotations

import importlib
import sys
import threading

from app.driver import DRIVER
from ops import children, orphans, schema_head
from ops.api_branch import ApiBranch
from ops.backends import DatabaseBackend
from ops.dbcheck import schema_revision, wait_ready
from ops.endpoint import Endpoint
from ops.plan import APPLY, KEEP, STOP, Action
from ops.platform import yield_cpu_to_others
from ops.roles import ensure_reader
from ops.session import Session, now
from ops.stackfile import Process, StackFile
from ops.state import ProcessRecord
from ops.steps import Step

PRELOAD_DELAY_MAX_S = 1.0
PRELOAD_NICENESS = 10  # A/B on 2 cores: cold `up` 0.90x and 0.93x of the un-niced preload


def endpoint_values(endpoint: Endpoint, api_url: str | None) -> dict[str, str]:
    """What `{db.url}`, `{api.url}` and kin stand for in a declared process's command and env."""
    values = {
        "db.url": endpoint.url().replace(f"{DRIVER}://", "postgresql://", 1),
        "db.host": endpoint.host,
        "db.port": str(endpoint.port),
        "db.database": endpoint.database,
        "db.user": endpoint.user,
    }
    if api_url:
        host, _, port = api_url.removeprefix("http://").rpartition(":")
        values.update({"api.url": api_url, "api.host": host, "api.port": port})
    return values


def api_env(stack: StackFile, endpoint: Endpoint, api_url: str) -> dict[str, str]:
    """The stack file's `env` for the API, with `{db.url}`, `{api.url}` and kin substituted."""
    from ops.processes import substitute

    (_, declared), *_ = stack.of_kind("asgi")
    values = _named(endpoint_values(endpoint, api_url), stack)
    return {key: substitute(value, values) for key, value in declared.env.items()}


def process_steps(run: Session, stack: StackFile, endpoint: Endpoint, api_url: str) -> None:
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
        started_at=now(),
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


def sweep(run: Session, component: str, swept: list[str]) -> None:
    """Stop this stack's orphaned `component` before starting its replacement, and say so."""
    for line in orphans.sweep(run.settings, run.state, [component]):
        run.emit(f"swept: {line}")
        swept.append(line)


def _preload_migrations(run: Session, after: threading.Event) -> threading.Thread | None:
    """When the plan applies migrations, import the driver, then Alembic (and SQLAlchemy), in the
    background while the database starts, once `after` is set (uvicorn spawned: the import would
    hold the GIL the API branch needs); this thread is the only one importing Alembic until the
    migrate step joins it. The driver comes first: the backend's provisioning needs it next, and
    while the template is unpacked (in a child) this thread has the interpreter to itself. On two
    cores, this import, the database's start and uvicorn's import of the app share the CPU, and the
    last ends the critical path: so this thread runs niced (Linux), and uvicorn gets the core."""
    planned = [a for a in (run.plan.actions if run.plan else ()) if a.verb == APPLY]
    if not planned or "ops.migrate" in sys.modules:
        return None

    def preload_after() -> None:
        after.wait(PRELOAD_DELAY_MAX_S)
        yield_cpu_to_others(PRELOAD_NICENESS)  # the API's import, beside it, is the longer wait
        importlib.import_module("psycopg")
        importlib.import_module("ops.migrate")

    preload = threading.Thread(target=preload_after, daemon=True)
    preload.start()
    return preload


def db_steps(
    run: Session, backend: DatabaseBackend, why: str, swept: list[str], branch: ApiBranch
) -> Endpoint:
    settings, ledger = run.settings, run.ledger
    with ledger.step("db") as step:
        branch.launch(backend.planned_endpoint())  # uvicorn first: its import is the longest wait
        preload = _preload_migrations(run, branch.spawned)
        if backend.owns_server and not backend.is_running():
            sweep(run, "db", swept)
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
                settings.log_file("migrate"),
            )
            step.attempts = result.attempts
            applied = result.direction != "none"
            step.detail = f"{result.before or 'base'} -> {result.after}"
            if not applied:
                step.skip(f"schema already at head {result.after}")
        if backend.owns_server and (applied or not branch.keep):
            ensure_reader(endpoint, branch.reader_password)  # the API's role and its grants
    return endpoint
