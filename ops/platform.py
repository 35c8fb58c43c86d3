"""What differs between operating systems, in one place: everything else is portable.

POSIX-only calls (the `pwd` database, effective uid, `useradd`, `chown`, process sessions)
live here behind `IS_POSIX`. On Windows the harness does not run PostgreSQL or the API
itself yet: `require_posix` turns that into one line and exit code 3, naming what is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import BackendUnavailable

IS_POSIX = os.name == "posix"
IS_MACOS = sys.platform == "darwin"
SERVICE_USER = "homer-pg"  # the unprivileged OS user PostgreSQL runs as when the harness runs as root


@dataclass(frozen=True)
class Account:
    """An OS user to run a child process as."""

    name: str
    uid: int
    gid: int
    home: str


def require_posix(what: str) -> None:
    """BackendUnavailable (exit 3) on a system without POSIX processes, naming what is missing."""
    if not IS_POSIX:
        raise BackendUnavailable(
            f"{what} needs POSIX process sessions and signals, which {sys.platform} lacks",
            "run the harness under WSL 2 (Linux) on Windows, or use --backend external for the database",
        )


def is_root() -> bool:
    return IS_POSIX and os.geteuid() == 0


def service_account(create: bool = True) -> Account | None:
    """The unprivileged OS user to run PostgreSQL as, when we are root (created if needed; with
    `create=False`, KeyError when it does not exist yet)."""
    if not is_root():
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        if not create:
            raise
        _create_system_user(SERVICE_USER)
        try:
            entry = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise BackendUnavailable(
                f"could not create the OS user {SERVICE_USER!r}", "create it by hand"
            ) from None
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir or "/")


def _create_system_user(name: str) -> None:
    useradd = shutil.which("useradd")
    if useradd is None:
        raise BackendUnavailable(
            f"running as root and no {name!r} user exists, and useradd is missing",
            f"create an unprivileged user {name!r}, or run as a normal user",
        )
    subprocess.run(
        [useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", name],
        check=False,
        capture_output=True,
    )  # fmt: skip


def run_as(account: Account | None) -> dict[str, Any]:
    """subprocess keyword arguments that run the child as `account` (none when it is None)."""
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def run_bounded(
    argv: list[str],
    runner: Account | None,
    timeout: float,
    env: dict[str, str],
    cwd: Path | str = "/",
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` as `runner` (see `run_as`) from `cwd` with exactly `env` (and `stdin`): output
    captured as text, TimeoutExpired after `timeout` s, the exit status left to the caller."""
    return subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
        **run_as(runner),
    )


def yield_cpu_to_others(niceness: int) -> None:
    """Lower the calling thread's scheduling priority by `niceness` (Linux, where a thread has a
    priority of its own: setpriority on its thread id); a no-op elsewhere, where that id could
    name another process."""
    if sys.platform != "linux":
        return
    import threading

    with contextlib.suppress(OSError):
        os.setpriority(
            os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + niceness
        )


class LockBusy(Exception):
    """`exclusive_lock` could not take the lock within its wait."""


@contextlib.contextmanager
def exclusive_lock(path: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold an exclusive OS lock on `path` (created if missing), released by the OS if the holder
    dies; tried every 0.1 s for `wait_seconds`, else LockBusy. flock on POSIX (filelock's import,
    ~30 ms, was a tenth of what a cold `up` does before it starts anything), filelock (msvcrt)
    elsewhere."""
    if not IS_POSIX:
        from filelock import FileLock, Timeout

        lock = FileLock(path, timeout=wait_seconds, poll_interval=0.1)
        try:
            lock.acquire()
        except Timeout:
            raise LockBusy(str(path)) from None
        try:
            yield
        finally:
            lock.release()
        return
    import fcntl
    import time

    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(str(path)) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def give_to(account: Account | None, *paths: Path) -> None:
    """Make `account` own `paths` (a no-op when not running as root)."""
    if account is None:
        return
    for path in paths:
        os.chown(path, account.uid, account.gid)


def allow_traverse(path: Path) -> None:
    """Give others search (x) permission on `path` and its ancestors, as PostgreSQL needs."""
    for directory in [path, *path.parents]:
        if not directory.is_dir():
            continue
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def detached() -> dict[str, Any]:
    """subprocess keyword arguments for a child that outlives us and gets no terminal signals."""
    if IS_POSIX:
        return {"start_new_session": True}
    return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
