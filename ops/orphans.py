"""This stack's processes that its state file no longer knows, found by their marks and stopped.

After `rm .ops/state.json` the API still runs but no record names it; after `git clean -fdx`
a postmaster runs on a deleted data directory. Both carry the marks of `ops.scope`, so they
are found here and stopped before `up` starts their replacements, by `down`, and (for every
stack of every checkout) by `down --all`; `diagnose` lists them.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterable
from pathlib import Path

import psutil

from ops.procs import process, terminate
from ops.scope import Marked, marked_processes
from ops.settings import Settings
from ops.state import StackState

POSTMASTER_GRACE_S = 10.0


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid a data directory's postmaster.pid names, if any."""
    try:
        first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def find(settings: Settings, state: StackState, components: Iterable[str] | None = None) -> list[Marked]:
    """This stack's marked processes (of `components`; None: of any) that nothing in the state or on
    disk owns."""
    wanted = None if components is None else set(components)
    known = {
        "db": postmaster_pid(settings.state_dir / "pgdata"),
        "api": state.api.pid,
        **{name: record.pid for name, record in state.processes.items()},
    }
    return [
        mark
        for mark in marked_processes()
        if mark.belongs_to(settings)
        and (wanted is None or mark.component in wanted)
        and mark.pid != known.get(mark.component)
    ]


def sweep(settings: Settings, state: StackState, components: Iterable[str] | None = None) -> list[str]:
    """Stop this stack's orphans (of `components`; None: of any); one line per process stopped."""
    return stop_each(find(settings, state, components))


def stop_each(found: Iterable[Marked]) -> list[str]:
    return [f"stopped orphaned {mark.describe()}" for mark in found if stop(mark)]


def every_stack() -> list[Marked]:
    """For `down --all`: every marked process of every stack and checkout."""
    return list(marked_processes())


def stop(mark: Marked) -> bool:
    """Stop one marked process: a postmaster by a fast shutdown (SIGINT), anything else as a tree."""
    if mark.component != "db":
        return terminate(mark.pid)
    proc = process(mark.pid)
    if proc is None:
        return False
    with contextlib.suppress(psutil.Error):
        proc.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown: needs no data directory
        proc.wait(POSTMASTER_GRACE_S)
        return True
    return terminate(mark.pid)
