"""Child processes the harness starts and leaves running: the API and declared processes.

Each runs detached (its own session, no terminal signals), with stdout and stderr in its log
file (the previous log kept as `<name>.log.1`) and the marks of its stack in its environment
(`ops.scope`). The `Popen` objects are kept (`ops.procs.own`) so that an exit code can be read while waiting.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ops import procs
from ops.platform import detached, require_posix
from ops.scope import marks
from ops.settings import Settings


def spawn(settings: Settings, component: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> int:
    """Start `argv` in the project directory as `component` of this stack; return its pid."""
    require_posix(f"running {component} in the background")
    log.parent.mkdir(parents=True, exist_ok=True)
    if log.exists() and log.stat().st_size:
        log.replace(log.with_name(f"{log.name}.1"))
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env, **marks(settings, component)}
    with open(log, "ab") as out:
        child = subprocess.Popen(
            list(argv),
            cwd=settings.project_dir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            **detached(),
        )
    procs.own(child)
    return child.pid


def exit_code(pid: int) -> int | None:
    """The exit code of a child spawned by this process, if it has exited."""
    child = procs.owned(pid)
    return None if child is None else child.poll()


def stop(pid: int | None, grace: float = 5.0) -> bool:
    """Stop the child and its own children; True if something was running."""
    if not pid:
        return False
    ours = procs.disown(int(pid))
    if ours is not None and ours.poll() is not None:
        return False
    stopped = procs.terminate(int(pid), grace)
    if ours is not None:
        ours.wait(timeout=grace)  # reaps it: no zombie, no exit-time warning
    return stopped
