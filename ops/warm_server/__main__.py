"""`python -m ops.warm_server APP --host H --port P [--events FILE] [--workers N] ...`.

Binds the port (exit 7 if it is taken), preloads the libraries, then runs the supervisor
(`ops.warm_server.parent`) until SIGTERM/SIGINT (exit 0) or it gives up (exit 11).
"""

from __future__ import annotations

import argparse
import errno
import gc
import socket
import sys
import time
from pathlib import Path

from ops.warm_server import EXIT_PORT_IN_USE, RESTART_POLICIES
from ops.warm_server.events import Events
from ops.warm_server.parent import Supervisor
from ops.warm_server.preload import Project, preload
from ops.warm_server.records import Options

BACKLOG = 2048


def parse(args: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m ops.warm_server",
        description="Serve an ASGI app from forked uvicorn children; SIGHUP reloads the code.",
    )
    parser.add_argument("app", help="module:attr, imported relative to the current directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", type=Path, help="append one JSON event a line to this file")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--restart", choices=RESTART_POLICIES, default="on-failure")
    parser.add_argument("--max-quick-crashes", type=int, default=5)
    ns = parser.parse_args(args)
    if ":" not in ns.app or ns.app.startswith(":") or ns.app.endswith(":"):
        parser.error(f"APP must be module:attr, not {ns.app!r}")
    if ns.workers < 1 or ns.max_quick_crashes < 1:
        parser.error("--workers and --max-quick-crashes must be at least 1")
    return Options(ns.app, ns.host, ns.port, ns.events, ns.workers, ns.restart, ns.max_quick_crashes)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket every generation shares (SO_REUSEADDR, inheritable)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def main(options: Options) -> int:
    """Run the warm server until it is stopped or gives up; the process's exit code."""
    started = time.monotonic()
    root = Path.cwd().resolve()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        sock = listen(options.host, options.port)
    except OSError as exc:
        why = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        print(f"warm: cannot listen on {options.host}:{options.port}: {why}", file=sys.stderr, flush=True)
        return EXIT_PORT_IN_USE
    events = Events(options.events)
    project = Project.of(options.app, root)
    loaded = preload(options.app, project)
    line = f"preloaded {loaded.count} modules in {loaded.seconds:.2f} s"
    events.emit("preloaded", line, count=loaded.count, seconds=loaded.seconds, failed=len(loaded.failed))
    gc.freeze()  # the preloaded objects stay shared with the children, not copied on write by the collector
    threads = sys.modules.get("threading")
    if threads is not None and threads.active_count() > 1:
        print("warm: a preloaded module started a thread: forking may deadlock", file=sys.stderr, flush=True)
    return Supervisor(options, project, sock, events, loaded).run(started)


if __name__ == "__main__":
    raise SystemExit(main(parse()))
