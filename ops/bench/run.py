"""The bench's sections in order, on throwaway stacks that are always torn down; then the outputs."""

from __future__ import annotations

import os
import platform
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError

from ops import stack as ops_stack
from ops.artifacts import ArtifactWriter
from ops.bench import memory, report
from ops.bench.data import index_build_figures, ingest_figures
from ops.bench.devloop import dev_figures
from ops.bench.load import search_figures
from ops.bench.metrics_cost import metrics_cost_figures
from ops.bench.scale import scale_figures
from ops.bench.sqlready import sql_ready_figures, why_not
from ops.bench.targets import evaluate
from ops.bench.up_timing import stack_figures
from ops.bench.workers import CONCURRENCY, WORKER_COUNTS, worker_figures
from ops.endpoint import Endpoint
from ops.errors import DatabaseError, OpsError, UsageError, first_line
from ops.procs import free_port
from ops.roles import reader_name
from ops.settings import Settings, build_settings
from ops.signals import sigint_held
from ops.state import load_state_or_fresh

Say = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    quick: bool
    repeats: int
    requests: int  # per search cell (mode x concurrency), and for raw SQL
    scale_requests: int  # per mode and data size
    worker_requests: int  # per count of API workers, at concurrency 16
    metrics_requests: int  # per METRICS setting (on, off), at concurrency 16
    deadline_s: float  # per cell
    factors: tuple[int, ...]


def options(quick: bool, repeats: str | int | None) -> Options:
    """The run's bounds; UsageError for a --repeats that is not a positive whole number."""
    if repeats is not None and (not str(repeats).isdigit() or int(repeats) < 1):
        raise UsageError(f"--repeats must be a positive whole number, not {repeats!r}")
    if quick:
        return Options(True, int(repeats or 1), 30, 30, 160, 320, 4.0, (1, 4))
    return Options(False, int(repeats or 3), 300, 150, 960, 1920, 30.0, (1, 4, 16))


def resolve_backend(choice: str) -> tuple[str, Any]:
    """(embedded|docker, Docker client or None); BackendUnavailable when docker has no engine."""
    from ops.docker_engine import connect, try_connect

    if choice == "external":
        raise UsageError(
            "the bench cannot use --backend external", "it starts its own stacks: auto, embedded or docker"
        )
    if choice == "auto":
        client, _ = try_connect()
        return ("docker", client) if client is not None else ("embedded", None)
    return (choice, connect()) if choice == "docker" else ("embedded", None)


def docker_image(client: Any, configured: str) -> str:
    """The configured image if the engine has it, else the offline image (built if missing), never a pull."""
    from docker.errors import ImageNotFound

    from ops.image import ensure_offline_image

    try:
        client.images.get(configured)
        return configured
    except ImageNotFound:
        return ensure_offline_image(client)[0]


@dataclass(frozen=True)
class Outcome:
    figures: dict[str, Any]
    summary: str
    written: list[Path]


def bench(settings: Settings, opts: Options, say: Say) -> Outcome:
    """Resolve the backend, run every section, write bench.json, the docs block and the plot."""
    backend, client = resolve_backend(settings.backend)
    try:
        image = docker_image(client, settings.docker_image) if client is not None else None
        figures = measure(settings.project_dir, backend, client, image, opts, say)
    except (DBAPIError, psycopg.Error) as exc:
        reason = first_line(getattr(exc, "orig", None) or exc)
        raise DatabaseError(
            f"the bench's database failed: {reason}", "see the bench's progress above"
        ) from None
    finally:
        if client is not None:
            client.close()
    return write_outputs(settings.project_dir, figures)


def measure(
    project: Path, backend: str, client: Any, image: str | None, opts: Options, say: Say
) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "machine": machine_facts(),
        "options": {"backend": backend, "image": image, **asdict(opts)},
    }
    say(f"stack: cold and warm `up` against the bare steps, {opts.repeats} time(s)")
    figures["stack"] = stack_figures(project, backend, opts.repeats, client, image)
    edits, idle_s = (5, 5.0) if opts.quick else (10, 60.0)
    say(f"dev: {edits} edits to served, crashes to healthy, {idle_s:.0f} s idle, against a cold API start")
    figures["dev"] = dev_figures(project, backend, edits, idle_s, image)
    figures["docker_sql_ready"] = docker_sql_ready(project, client, opts.repeats, say)
    with live_stack(project, backend, image, client, say) as live:
        figures["machine"]["postgres"] = server_version(live.owner)
        say("ingest: the whole Iliad, then the search indexes built again")
        figures["ingest"] = ingest_figures(live.owner)
        figures["index_build"] = index_build_figures(live.owner)
        idle = memory.snapshot(live.api_pid, live.postgres_pids)
        say(f"search: 3 modes x concurrency 1/4/16, {opts.requests} requests a cell; raw SQL")
        with memory.PeakSampler(live.api_pid, live.postgres_pids) as sampler:
            figures["search"] = search_figures(
                live.api_url, live.owner, live.reader, opts.requests, opts.deadline_s
            )
        figures["memory"] = {
            "idle": idle,
            "load": sampler.peak,
            "after_load": memory.snapshot(live.api_pid, live.postgres_pids),
        }
        counts = "/".join(map(str, WORKER_COUNTS))
        say(f"workers: {counts} API workers, {opts.worker_requests} searches at concurrency {CONCURRENCY}")
        figures["workers"] = worker_figures(live.settings, _up_quietly, opts.worker_requests, opts.deadline_s)
        say(f"metrics: {opts.metrics_requests} searches at concurrency 16 with METRICS on, and off")
        figures["metrics_cost"] = metrics_cost_figures(
            project, live.reader, opts.metrics_requests, opts.deadline_s
        )
        say(f"scale: {', '.join(f'{f}x' for f in opts.factors)} the Iliad")
        figures["scale"] = scale_figures(
            live.owner, live.api_url, opts.factors, opts.scale_requests, opts.deadline_s
        )
    figures["targets"] = [target.as_dict() for target in evaluate(figures)]
    return figures


def docker_sql_ready(project: Path, client: Any, repeats: int, say: Say) -> dict[str, Any]:
    """Docker only, whatever the backend of the other sections: the harness's create → SQL-ready
    against testcontainers' on the offline image (built if missing); {"skipped": why} otherwise."""
    from ops.docker_engine import try_connect
    from ops.image import ensure_offline_image

    own = None
    if client is None:
        own, reason = try_connect()
        if own is None:
            return {"skipped": f"no Docker engine answers ({reason})"}
    engine = client or own
    try:
        skipped = why_not(engine)
        if skipped:
            return {"skipped": skipped}
        try:
            image = ensure_offline_image(engine)[0]
        except OpsError as exc:
            return {"skipped": f"the offline image cannot be had: {exc.one_line()}"}
        say(f"docker create → SQL-ready: harness, replica and testcontainers on {image}, {repeats} time(s)")
        return sql_ready_figures(project, engine, image, repeats, say)
    finally:
        if own is not None:
            own.close()


def machine_facts() -> dict[str, Any]:
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "memory_gb": round(pages * page_size / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def server_version(owner: Endpoint) -> str:
    with psycopg.connect(**owner.connect_kwargs()) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


@dataclass(frozen=True)
class LiveStack:
    api_url: str
    api_pid: int
    owner: Endpoint
    reader: Endpoint
    postgres_pids: memory.PidsOf
    settings: Settings


@contextmanager
def live_stack(project: Path, backend: str, image: str | None, client: Any, say: Say) -> Iterator[LiveStack]:
    """The harness's own `up` on a throwaway stack (temp state dir, free port), downed with its data after."""
    state_dir = Path(tempfile.mkdtemp(prefix="bench-search-"))
    flags = {
        "state_dir": str(state_dir),
        "stack": f"bench-{secrets.token_hex(4)}",
        "backend": backend,
        "api_port": free_port(),
        "seed": False,
        **({"docker_image": image} if image else {}),
    }
    settings = build_settings(project, flags=flags)
    try:
        result = ops_stack.up(settings, emit=_quiet)
        state = load_state_or_fresh(settings.state_file)
        db, api_pid = state.db, int(state.api.pid or 0)
        reader = replace(
            result.endpoint, user=reader_name(result.endpoint.user), password=db.reader_password or ""
        )
        if backend == "docker":
            container = client.containers.get(db.container_id)
            pids = memory.container_pids(container)
        else:
            pids = memory.postmaster_and_children(int(db.pid or 0))
        yield LiveStack(result.api_url, api_pid, result.endpoint, reader, pids, settings)
    finally:
        with sigint_held():
            try:
                ops_stack.down(settings, volumes=True, emit=_quiet)
            except OpsError as exc:
                say(f"warning: the bench's stack {settings.stack} was not torn down: {exc.one_line()}")
            shutil.rmtree(state_dir, ignore_errors=True)


def _quiet(_line: str) -> None:
    pass


def _up_quietly(settings: Settings) -> str:
    return ops_stack.up(settings, emit=_quiet).api_url


def write_outputs(project: Path, figures: dict[str, Any]) -> Outcome:
    """artifacts/bench.json, docs/benchmarks.md's generated block, and the plot when matplotlib is there."""
    docs = project / "docs"
    plotted = report.write_plot(figures, docs / report.PLOT_NAME)
    figures["plot"] = f"docs/{report.PLOT_NAME}" if plotted else None
    written = [ArtifactWriter(project / "artifacts", []).json("bench.json", figures)]
    summary = report.render(figures, report.PLOT_NAME if plotted else None)
    report.update_docs(docs / "benchmarks.md", summary)
    written.append(docs / "benchmarks.md")
    if plotted:
        written.append(docs / report.PLOT_NAME)
    return Outcome(figures, summary, written)
