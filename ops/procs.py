"""Process, port and log helpers shared by the backends and the API runner (portable, via psutil)."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from ops.platform import IS_POSIX

if TYPE_CHECKING:
    import subprocess

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess)

_owned: dict[int, subprocess.Popen[bytes]] = {}
"""Children whose exit code someone will read: reaped only through their `Popen`, which keeps it."""


def own(child: subprocess.Popen[bytes]) -> None:
    """Reap `child` through its `Popen` from now on, so that its exit code is kept."""
    _owned[child.pid] = child


def disown(pid: int) -> subprocess.Popen[bytes] | None:
    """Forget the `Popen` of `pid` (returned, if it was owned)."""
    return _owned.pop(pid, None)


def owned(pid: int) -> subprocess.Popen[bytes] | None:
    """The `Popen` of an owned child, or None."""
    return _owned.get(pid)


def process(pid: int | None) -> psutil.Process | None:
    """The live, non-zombie process `pid`, or None (a dead child of ours is reaped here)."""
    if not pid or pid <= 0:
        return None
    child = _owned.get(pid)
    if child is not None:
        if child.poll() is not None:
            return None
    elif IS_POSIX:
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return None
    try:
        proc = psutil.Process(pid)
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return None
        return proc
    except _GONE:
        return None
    except psutil.AccessDenied:
        return psutil.Process(pid)  # it runs; we may not look inside


def read_from(path: Path, offset: int) -> str:
    """What was appended to `path` after `offset` bytes ('' if it cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            handle.seek(offset)
            return handle.read()
    except OSError:
        return ""


def pid_alive(pid: int | None) -> bool:
    """True if `pid` runs and is not a zombie."""
    return process(pid) is not None


def started_at(pid: int | None) -> float | None:
    """When the process started (unix seconds), or None if it does not run."""
    proc = process(pid)
    if proc is None:
        return None
    try:
        return proc.create_time()
    except (psutil.Error, OSError):
        return None


def live_children(pid: int | None) -> set[int]:
    """The pids of the direct children of `pid` that run (not zombies); empty if it does not run."""
    proc = process(pid)
    try:
        kids = proc.children() if proc is not None else []
    except (psutil.Error, OSError):
        return set()
    found = set()
    for kid in kids:
        with contextlib.suppress(psutil.Error, OSError):
            if kid.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                found.add(kid.pid)
    return found


def rss_mb(pid: int | None) -> float | None:
    """The resident memory of `pid` in MB (None if it does not run or may not be read)."""
    proc = process(pid)
    try:
        return round(proc.memory_info().rss / 2**20, 1) if proc is not None else None
    except (psutil.Error, OSError):
        return None


def cmdline(pid: int) -> str:
    """The process's command line as one string ('' if unknown)."""
    proc = process(pid)
    if proc is None:
        return ""
    try:
        return " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return ""


def cwd(pid: int) -> Path | None:
    """The process's working directory, if it can be read."""
    proc = process(pid)
    try:
        return Path(proc.cwd()).resolve() if proc is not None else None
    except (psutil.Error, OSError):
        return None


def terminate(pid: int, grace: float = 5.0) -> bool:
    """Stop `pid` and its descendants: terminate, then kill after `grace` seconds. True if it ran."""
    proc = process(pid)
    if proc is None:
        return False
    try:
        tree = [proc, *proc.children(recursive=True)]
    except _GONE:
        return True
    for member in tree:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    _, alive = psutil.wait_procs(tree, timeout=grace)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    _, alive = psutil.wait_procs(alive, timeout=grace)
    return not any(member.pid == pid for member in alive)


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free on `host` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    """True if a listener could bind `host:port` now (with SO_REUSEADDR, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


@dataclass(frozen=True)
class PortHolder:
    """Who listens on a port: pid and command line (None where the OS would not tell)."""

    pid: int | None
    command: str


def port_holder(port: int) -> PortHolder | None:
    """The process listening on TCP `port` (any address), if the OS lets us see it."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return PortHolder(None, "")  # macOS without root: the holder cannot be read
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return PortHolder(conn.pid, cmdline(conn.pid) if conn.pid else "")
    return None


def tail(path: Path | None, lines: int = 40) -> str:
    """The last `lines` lines of a text file ('' if it does not exist)."""
    if path is None:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError:
        return ""
