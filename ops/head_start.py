"""A head start for a cold `up` on the embedded backend: the new cluster is unpacked while `up`
is still importing.

A new cluster is the initdb template unpacked by a child interpreter (`ops.initdb_cache`). Before
the db step can ask for it, `up` spends ~0.3 s in one thread importing and validating (pydantic,
the stack file, the state records), while the machine's other cores are idle. So `begin`, which
`invoke up` calls before those imports, guesses from the raw settings (read as `ops.noop` reads
them) whether this `up` will make a new embedded cluster, and if so starts the unpack into a
staging directory beside the data directory.

When the db step initialises the data directory, `initdb_cache.initialise` asks `claim` for it:
the staging directory is renamed into place only if its child succeeded and it holds what that
step would have unpacked itself (the same template file, untouched since, the same data
directory and owner); otherwise it is discarded and the step unpacks as before. A wrong guess
costs only the child's CPU. `discard`, at the end of `up` whatever happened, removes what was not
claimed; a staging directory left by a killed `up` is removed by the next `begin`. The staging
directory is never a cluster anyone runs: PostgreSQL only ever starts on the data directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops import cluster_pack, embedded_template
from ops.layout import state_dir_of
from ops.platform import IS_POSIX, Account, give_to, service_account
from ops.procs import pid_alive

STAGING_PREFIX = ".pgdata.head-start-"
STALE_AFTER_S = 3600.0  # an unpack takes well under a second: older is a killed `up`'s
DOCKER_SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True)
class _Pending:
    child: subprocess.Popen[str]
    staging: Path
    data_dir: Path
    template: Path
    template_stamp: tuple[int, int, int]
    owner: int  # the runner's uid, -1 for this user
    made_state_dir: bool  # removed again if nothing else was put there


_pending: _Pending | None = None  # one `up` per process: at most one head start


def begin(
    project_dir: Path, config: Mapping[str, Any], env: Mapping[str, str], flags: Mapping[str, Any]
) -> None:
    """Start unpacking the template for this `up`'s new embedded cluster, if it will make one."""
    global _pending
    discard()
    data_dir = _new_embedded_cluster(project_dir, config, env, flags)
    if data_dir is None:
        return
    state_dir = data_dir.parent
    try:
        runner = service_account(create=False)  # KeyError: not made yet; the backend makes it
        template = embedded_template.template(runner)
        stamp = _stamp(template)
    except (OSError, ImportError, KeyError, RuntimeError):
        return  # no template, no cache, no such user yet: the db step does it all, as without this
    made_state_dir = not state_dir.exists()
    staging = state_dir / f"{STAGING_PREFIX}{os.getpid()}"
    uid, gid = (runner.uid, runner.gid) if runner is not None else (-1, -1)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        _sweep(state_dir)
        staging.mkdir(mode=0o700)
        give_to(runner, staging)
        child = cluster_pack.start_unpack(template, staging, uid, gid)
    except OSError:
        _remove(staging, made_state_dir)
        return
    _pending = _Pending(child, staging, data_dir, template, stamp, uid, made_state_dir)


def claim(data_dir: Path, template: Path, runner: Account | None) -> bool:
    """Move the head start's cluster into the empty `data_dir` if it is exactly what unpacking
    `template` for `runner` would make there now; True if it did. Discarded either way."""
    global _pending
    pending, _pending = _pending, None
    if pending is None:
        return False
    try:
        cluster_pack.finish_unpack(pending.child, pending.template)
        fits = (
            pending.data_dir == data_dir
            and pending.template == template
            and pending.owner == (runner.uid if runner is not None else -1)
            and pending.template_stamp == _stamp(template)
        )
        if fits:
            os.rename(pending.staging, data_dir)  # onto the empty directory the step made
            return True
    except OSError:
        pass  # the step unpacks the template itself, and says so if that fails too
    finally:
        shutil.rmtree(pending.staging, ignore_errors=True)  # gone if renamed
    return False


def discard() -> None:
    """Stop and remove a head start nobody claimed."""
    global _pending
    pending, _pending = _pending, None
    if pending is None:
        return
    if pending.child.poll() is None:
        pending.child.kill()
    pending.child.communicate()
    _remove(pending.staging, pending.made_state_dir)


def _remove(staging: Path, and_state_dir: bool) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if and_state_dir:
        with contextlib.suppress(OSError):  # only if nothing else is in it
            staging.parent.rmdir()


def _new_embedded_cluster(
    project_dir: Path, config: Mapping[str, Any], env: Mapping[str, str], flags: Mapping[str, Any]
) -> Path | None:
    """The data directory this `up` will initialise on the embedded backend, as far as the raw
    settings tell; None when it looks otherwise (a cluster there, another backend, any doubt)."""

    def setting(name: str) -> Any:
        for value in (flags.get(name), env.get(f"OPS_{name.upper()}"), config.get(name)):
            if value is not None and value != "":
                return value
        return None

    if not IS_POSIX:
        return None
    state_dir = state_dir_of(project_dir, setting("state_dir"))
    data_dir = state_dir / "pgdata"
    if data_dir.exists() or (state_dir.exists() and not state_dir.is_dir()):
        return None
    backend = setting("backend") or "auto"
    if backend == "auto":
        backend = _recorded_backend(state_dir / "state.json") or "auto"
    if backend == "auto" and (env.get("DOCKER_HOST") or os.path.exists(DOCKER_SOCKET)):
        return None  # an engine may answer: `auto` may choose docker
    return data_dir if backend in ("auto", "embedded") else None


def _recorded_backend(state_file: Path) -> str | None:
    """The backend a stack's state file records (what `auto` keeps); "?" when unreadable."""
    try:
        recorded = json.loads(state_file.read_text()).get("db", {}).get("backend")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError):
        return "?"
    return recorded if isinstance(recorded, str) else None


def _stamp(path: Path) -> tuple[int, int, int]:
    found = path.stat()
    return found.st_ino, found.st_size, found.st_mtime_ns


def _sweep(state_dir: Path) -> None:
    """Remove staging directories of `up`s that are gone (or older than any unpack takes)."""
    cutoff = time.time() - STALE_AFTER_S
    for leftover in state_dir.glob(f"{STAGING_PREFIX}*"):
        pid = leftover.name.removeprefix(STAGING_PREFIX)
        try:
            if pid.isdigit() and pid_alive(int(pid)) and leftover.stat().st_mtime >= cutoff:
                continue
        except OSError:
            continue
        shutil.rmtree(leftover, ignore_errors=True)
