"""What `invoke dev` knows of each component beyond the state file: its status and backoff
(`Live`), whether it runs (`liveness`), what a crash does to it (`note_crash`), and its row in
the view (`rows`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from ops import api, children, processes
from ops.api_workers import Workers
from ops.backoff import Backoff
from ops.dev_view import ComponentRow
from ops.procs import started_at, tail
from ops.settings import Settings
from ops.stackfile import StackFile
from ops.state import StackState

TAIL_LINES = 12
RESTARTING = "restarting"


@dataclass
class Live:
    """What the loop knows of one component beyond the state file."""

    status: str = "starting"
    health: str = ""
    note: str = ""
    backoff: Backoff = field(default_factory=Backoff)
    down_since: float | None = None  # seen down, waiting for its restart
    short_since: float | None = None  # the API seen short of workers, waiting for its reload


class Seen(NamedTuple):
    """One running kind of component at one check."""

    name: str
    alive: bool
    log: Path
    policy: str  # its restart policy
    code: int | None  # its exit code, when it was our child and has exited


def liveness(
    settings: Settings, stack: StackFile, state: StackState, database_running: bool | None
) -> list[Seen]:
    """Each running kind of component: the database (unless `database_running` is None: not
    ours, or the engine does not answer), the API and the declared processes."""
    found: list[Seen] = []
    if database_running is not None:
        db_name = stack.of_kind("postgres")[0][0]
        found.append(Seen(db_name, database_running, settings.log_file("db"), "always", None))
    api_pid = state.api.pid
    if api_pid:
        code = children.exit_code(api_pid)  # before any liveness check: that reaps a dead child
        alive = api.is_ours(api_pid, settings)
        found.append(Seen(stack.of_kind("asgi")[0][0], alive, api.log_path(settings), "always", code))
    for name, record in state.processes.items():
        part = stack.components.get(name)
        if part is None or record.pid is None:
            continue
        code = children.exit_code(record.pid)
        alive = processes.is_ours(settings, name, record.pid)
        policy = getattr(part, "restart", "no")
        found.append(Seen(name, alive, processes.log_path(settings, name), policy, code))
    return found


def note_crash(live: Live, seen: Seen, clock: Callable[[], float]) -> str:
    """A component just seen down: crashed (restarting after its backoff), stopped (its policy
    wants no restart) or failed (crashed too often). Returns how it ended, for the alert."""
    live.down_since = clock()
    policy, code = seen.policy, seen.code
    wanted = policy == "always" or (policy == "on-failure" and code != 0)
    delay = live.backoff.crashed() if wanted else None
    exited = f"exited with code {code}" if code is not None else "is not running"
    if not wanted:
        live.status, live.note = "stopped", f"{exited}; restart policy {policy}"
    elif delay is None:
        live.status, live.note = "failed", f"{exited}; crashed too often, not restarted"
    else:
        live.status, live.note = "crashed", f"{exited}; {RESTARTING} in {delay:.1f} s"
    return exited


def rows(
    stack: StackFile, state: StackState, live: dict[str, Live], workers: Workers | None
) -> list[ComponentRow]:
    """The view's table: each component's status, address, process, uptime, restarts and notes."""
    found = []
    for name in stack.order:
        now = live.setdefault(name, Live())
        kind = stack.components[name].kind
        address, process, started = "", "", None
        if kind == "postgres":
            db = state.db
            address = f"{db.host}:{db.port}" if db.port else ""
            process = f"pid {db.pid}" if db.pid else (db.container_name or "")
            started = started_at(db.pid)
        elif kind == "asgi":
            record = state.api
            address, process, started = record.url or "", _pid(record.pid), _epoch(record.started_at)
            if workers is not None and process:
                process += f", {workers.count()}"
        elif name in state.processes:
            record = state.processes[name]
            process, started = _pid(record.pid), _epoch(record.started_at)
        status = now.status if kind in ("postgres", "asgi", "process") else "done"
        found.append(
            ComponentRow(name, status, address, process, started, now.backoff.restarts, now.health, now.note)
        )
    return found


def log_tail(path: Path) -> str:
    return tail(path, TAIL_LINES)


def last_lines(text: str) -> str | None:
    lines = text.strip().splitlines()[-TAIL_LINES:]
    return "\n".join(lines) or None


def _pid(pid: int | None) -> str:
    return f"pid {pid}" if pid else ""


def _epoch(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None
