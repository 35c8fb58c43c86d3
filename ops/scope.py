"""Which checkout and stack a resource belongs to.

A stack is scoped to its checkout: Docker names carry a short hash of the project
directory, and every process the harness starts carries marks in its environment (the
stack, the checkout, the state directory, the component), which psutil reads back. So a
stack's processes are found even after its state file or data directory was deleted, and
nothing of another checkout or stack is ever taken for ours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from ops.settings import Settings

MARK_STACK = "HOMER_OPS_STACK"
MARK_CHECKOUT = "HOMER_OPS_CHECKOUT"
MARK_STATE_DIR = "HOMER_OPS_STATE_DIR"
MARK_COMPONENT = "HOMER_OPS_COMPONENT"
MARK_NAMES = (MARK_STACK, MARK_CHECKOUT, MARK_STATE_DIR, MARK_COMPONENT)


def checkout_id(project_dir: Path) -> str:
    """A short, stable hash of the checkout's directory, for names that must not collide."""
    return hashlib.sha256(str(Path(project_dir).resolve()).encode()).hexdigest()[:8]


def marks(settings: Settings, component: str) -> dict[str, str]:
    """The environment marks of a process the harness starts for `component` of this stack."""
    return {
        MARK_STACK: settings.stack,
        MARK_CHECKOUT: str(settings.project_dir),
        MARK_STATE_DIR: str(settings.state_dir),
        MARK_COMPONENT: component,
    }


@dataclass(frozen=True)
class Marked:
    """A process carrying the harness's marks."""

    pid: int
    stack: str
    checkout: str
    state_dir: str
    component: str
    command: str

    def belongs_to(self, settings: Settings) -> bool:
        return self.state_dir == str(settings.state_dir)

    def describe(self) -> str:
        return f"{self.component} pid {self.pid} (stack {self.stack}, checkout {self.checkout})"


def marked_processes() -> Iterator[Marked]:
    """Every running process with the harness's marks whose parent lacks the same marks.

    A postmaster's backends inherit its environment; only the postmaster itself is listed.
    Processes whose environment we may not read are passed over.
    """
    found: dict[int, tuple[Marked, int]] = {}
    for proc in psutil.process_iter(["pid", "ppid", "environ", "cmdline", "status"]):
        info = proc.info
        mark = _from_env(info["pid"], info.get("environ") or {}, info.get("cmdline") or [])
        if mark is not None and info.get("status") != psutil.STATUS_ZOMBIE:
            found[mark.pid] = (mark, info.get("ppid") or 0)
    for mark, parent in found.values():
        above = found.get(parent)
        if above is None or (above[0].state_dir, above[0].component) != (mark.state_dir, mark.component):
            yield mark


def mark_of(pid: int) -> Marked | None:
    """The marks `pid` carries, or None (not marked, gone, or not ours to read)."""
    try:
        proc = psutil.Process(pid)
        return _from_env(pid, proc.environ(), proc.cmdline())
    except (psutil.Error, OSError):
        return None


def _from_env(pid: int, env: dict[str, str], argv: list[str]) -> Marked | None:
    if MARK_STATE_DIR not in env:
        return None
    return Marked(
        pid,
        env.get(MARK_STACK, ""),
        env.get(MARK_CHECKOUT, ""),
        env[MARK_STATE_DIR],
        env.get(MARK_COMPONENT, ""),
        " ".join(argv),
    )
