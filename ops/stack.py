"""The stack's commands: up (with --plan), down and migrate, as steps on one state file.

`up` is the order of things: the plan, then the database's steps (`ops.converge`) with the API's
beside them (`ops.api_branch`), then the declared processes. The lock, state and ledger are
`ops.session`'s; `status` is `ops.status`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ops import api, children, orphans, schema_head
from ops.api_branch import ApiBranch, database_address
from ops.backends import DatabaseBackend, select_backend
from ops.converge import api_env, db_steps, process_steps, sweep
from ops.dbcheck import schema_revision
from ops.endpoint import Endpoint
from ops.errors import DatabaseError
from ops.health import served_schema
from ops.plan import KEEP, Plan, api_fingerprint, describe, make_plan
from ops.session import (
    Session,
    load_state_or_fresh_readonly,
    now,
    recorded_endpoint,
    session,
    writer_endpoint,
)
from ops.settings import Settings
from ops.signals import sigterm_as_interrupt
from ops.stackfile import STACK_FILE, StackFile, load_stack_file
from ops.state import ProcessRecord, StackState
from ops.status import status as status  # `invoke status`, beside up and down
from ops.steps import Emit, StepHooks, critical_path, describe_path

CHECKS = frozenset({"db-ready", "api-health"})  # steps that only look, always run


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

    def summary(self) -> list[str]:
        """What `invoke up` prints last: where the API and the database are, and the DSN (masked)."""
        return [
            f"API       {self.api_url}  (docs: {self.api_url}/docs)",
            f"Database  {self.endpoint.host}:{self.endpoint.port}  [{self.backend}]",
            f"DSN       {self.endpoint.masked_url()}",
        ]


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
        process_steps(run, stack, endpoint, api_url)
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
            endpoint = db_steps(run, backend, why, swept, branch)
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
        sweep=lambda: sweep(run, "api", swept),
        now=now,
        declared_env=lambda owner, url: api_env(stack, owner, url),
    )


def _critical_path(run: Session) -> None:
    """What the command's time went to, when it did any work (a no-op says nothing more)."""
    chain = critical_path(run.ledger.steps)
    if any(step.status == "OK" and step.name not in CHECKS for step in run.ledger.steps):
        run.emit(describe_path(chain))


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


def _plan(run: Session, stack: StackFile, backend: DatabaseBackend) -> Plan:
    endpoint = writer_endpoint(run.settings, run.state)
    schema = _schema_of(run.settings, run.state)
    return make_plan(run.settings, stack, run.state, backend, schema, endpoint, warm_api=run.warm_api)


def _schema_of(settings: Settings, state: StackState) -> Callable[[Endpoint], tuple[str | None, str | None]]:
    def schema(endpoint: Endpoint) -> tuple[str | None, str | None]:
        head = schema_head.head(settings.project_dir, state)
        if _served_at(settings, state, endpoint, head):
            return head, head
        import psycopg

        try:
            return schema_revision(endpoint, timeout=2), head
        except psycopg.Error:
            return "unknown (the database does not answer)", head

    return schema


def _served_at(settings: Settings, state: StackState, endpoint: Endpoint, head: str | None) -> bool:
    """Whether our API, on this very database and reading from it (no READ_DATABASE_URL), says at
    /health that the schema is `head`: then the plan needs no driver to know it (it is 200 only
    when the database's revision is the API's own head, and it names that revision)."""
    if head is None or settings.read_database_url or state.api.database != database_address(endpoint):
        return False
    if not api.is_ours(state.api.pid, settings):
        return False
    status, served = served_schema(api.recorded_url(settings, state))
    return status == 200 and served == head


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
    from ops.docker_engine import try_connect

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
                settings.log_file("migrate"),
            )
            step.attempts = result.attempts
            step.detail = f"{result.before or 'base'} -> {result.after or 'base'}"
            if result.direction == "none":
                step.skip(f"already at {result.after or 'base'}")
        return step.detail
