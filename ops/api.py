"""uvicorn as a child process that outlives `invoke up`: log file, health wait, stop.

The child's stdout and stderr go to `.ops/logs/api.log` (the previous log is kept as
api.log.1). The health wait polls GET /health quickly and ends at once, with the exit
code and the log's last lines, if the child dies first: nobody waits on the dead.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ops import children
from ops.api_workers import Workers, census
from ops.api_workers import expected as expected_workers
from ops.errors import ApiError, PortInUse
from ops.health import Health, probe
from ops.procs import cmdline, cwd, free_port, pid_alive, port_free, port_holder, tail
from ops.scope import mark_of
from ops.settings import Settings
from ops.state import ProcessRecord, StackState
from ops.waiting import NotReady, WaitPolicy, retry_call


def log_path(settings: Settings) -> Path:
    return settings.log_file("api")


def recorded_url(settings: Settings, state: StackState) -> str:
    """The URL the stack's API was started on (the state file's), else the configured one."""
    return state.api.url or settings.api_url


def is_ours(pid: int | None, settings: Settings) -> bool:
    """True if `pid` is alive and is this stack's API (by its marks, or as started before marks)."""
    if not pid or not pid_alive(pid):
        return False
    mark = mark_of(pid)
    if mark is not None:
        return mark.belongs_to(settings) and mark.component == "api"
    line = cmdline(pid)  # an API started by an older harness carries no marks
    return "uvicorn" in line and settings.app in line and cwd(pid) == settings.project_dir


def choose_port(settings: Settings, recorded: int | None) -> int:
    """The API's port: the configured one when free; when it is only the default and taken,
    the port this stack had (if free) or a free one. A port set explicitly that is taken is PortInUse.
    """
    wanted = settings.api_port
    if not wanted or port_free(settings.api_host, wanted):
        return wanted or free_port(settings.api_host)
    if settings.api_port_fixed:
        raise PortInUse(
            f"port {settings.api_host}:{wanted} for the API is in use by {holder_of(wanted)}",
            "stop it, or choose another port with --api-port / OPS_API_PORT",
        )
    if recorded and recorded != wanted and port_free(settings.api_host, recorded):
        return recorded
    return free_port(settings.api_host)


def holder_of(port: int) -> str:
    """Who holds `port`, for an error message: pid, command, and whether it is this harness's."""
    holder = port_holder(port)
    if holder is None or holder.pid is None:
        return "another process (the OS did not say which)"
    mark = mark_of(holder.pid)
    whose = f"this harness's {mark.describe()}" if mark else "a process not started by this harness"
    return f"pid {holder.pid} ({holder.command[:80] or 'command unknown'}), {whose}"


def events_path(settings: Settings) -> Path:
    """Where the warm server (`ops.warm_server`) reports ready, reloaded, reload_failed, ..."""
    return settings.logs_dir / "api.events.jsonl"


def serves_warm(warm: bool) -> bool:
    """Whether a `warm` request can be met: the warm server forks, so not where fork does not exist."""
    from ops import warm_server

    return warm and warm_server.available()


@dataclass(frozen=True)
class Server:
    """How the API is served: plain uvicorn, or the warm server forking `workers` children."""

    warm: bool
    workers: int = 1
    restart: str | None = None  # the warm server's policy for a worker that exits


def server_for(settings: Settings, warm: bool) -> Server:
    """The server for `settings.api_workers`. Under `dev` (`warm`) the warm server, which forks a worker
    that dies again. Under `up` with more than one worker the warm server too, with `--restart no`: the
    harness heals (`up` reloads, `dev` at once), so a dead worker stays dead and is seen. Otherwise plain
    uvicorn, as before workers; where fork does not exist, `uvicorn --workers N`."""
    workers = settings.api_workers
    if (warm or workers > 1) and serves_warm(True):
        return Server(True, workers, "on-failure" if warm else "no")
    return Server(False, workers)


def ran_under_dev(record: ProcessRecord) -> bool:
    """Whether the recorded API is a warm server started by `dev` (not by `up` for its workers)."""
    return record.server == "warm" and record.restart != "no"


def workers(settings: Settings, record: ProcessRecord) -> Workers:
    """The recorded API's workers now (`ops.api_workers`)."""
    return census(record, events_path(settings))


def start(
    settings: Settings,
    database_url: str,
    port: int,
    server: Server,
    extra_env: Mapping[str, str] | None = None,
) -> int:
    """Spawn the API on `port` in its own session, marked as this stack's API; return its pid.

    Plain uvicorn, or the warm server (`server_for`), which keeps the libraries imported and forks its
    workers from them, and a fresh generation per reload. `extra_env` is the stack file's `env` for
    the API (its placeholders substituted); DATABASE_URL and READ_DATABASE_URL are the harness's."""
    if not port_free(settings.api_host, port):
        raise PortInUse(
            f"port {settings.api_host}:{port} for the API is in use by {holder_of(port)}",
            "stop it, or choose another port with --api-port / OPS_API_PORT",
        )
    if server.warm:
        from ops import warm_server

        events = events_path(settings)
        events.unlink(missing_ok=True)
        host, app = settings.api_host, settings.app
        argv = warm_server.argv(app, host, port, events, server.workers, server.restart or "on-failure")
    else:
        argv = [
            sys.executable, "-m", "uvicorn", settings.app,
            "--host", settings.api_host, "--port", str(port),
        ]  # fmt: skip
        if server.workers > 1:
            argv += ["--workers", str(server.workers)]
    env = {**(extra_env or {}), "DATABASE_URL": database_url}
    if settings.read_database_url:
        env["READ_DATABASE_URL"] = settings.read_database_url
    return children.spawn(settings, "api", argv, env, log_path(settings))


def reload(settings: Settings, pid: int, timeout: float) -> float:
    """Have the warm server `pid` fork the code as it is now (SIGHUP); the seconds it took.

    The old code serves until the new is ready. ApiError with the traceback's last lines when the
    new code does not load (the old one then still serves), or when the server dies or is silent."""
    import os
    import signal
    import time

    from ops.warm_server import read_events

    events = events_path(settings)
    offset = events.stat().st_size if events.exists() else 0
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found, offset = read_events(events, offset)
        for event in found:
            if event.get("event") == "reloaded":
                return float(event.get("seconds", 0.0))
            if event.get("event") == "reload_failed":
                raise ApiError(
                    f"the API's new code does not load: {event.get('error', 'failed')}",
                    "fix it and run again; the previous code still serves",
                    evidence=str(event.get("traceback", "")),
                )
        if not pid_alive(pid):
            break
        time.sleep(0.01)
    raise ApiError(
        f"the warm API server pid {pid} did not reload within {timeout:.0f} s",
        f"see {log_path(settings)}",
        evidence=tail(log_path(settings), settings.log_tail_lines),
    )


def wait_healthy(
    settings: Settings, url: str, record: ProcessRecord, policy: WaitPolicy
) -> tuple[Health, int]:
    """Poll until /health is 200 and all the recorded API's workers serve; fail at once if it exits.
    Returns (health, attempts)."""
    pid = record.pid
    assert pid is not None
    last, running = Health(None, "no answer yet"), Workers(1, (), pid)

    def alive() -> None:
        code = exit_code(pid)
        if code is not None or not pid_alive(pid):
            raise ApiError(
                f"uvicorn exited{'' if code is None else f' with code {code}'} before /health answered",
                f"see {log_path(settings)}",
                evidence=tail(log_path(settings), settings.log_tail_lines),
            )

    def poll() -> Health:
        nonlocal last, running
        last = probe(url)
        if last.status != 200:
            raise NotReady(last.body)
        if expected_workers(record) > 1:
            running = workers(settings, record)
            if not running.complete:
                raise NotReady(running.shortfall())
        return last

    try:
        return retry_call(poll, policy, alive)
    except NotReady:
        within = f"within {policy.timeout:.0f} s"
        message = (
            f"the API did not have {running.expected} workers serving {within} ({running.shortfall()})"
            if last.status == 200
            else f"/health did not answer 200 {within} (last: {last.status} {last.body})"
        )
        raise ApiError(
            message, f"see {log_path(settings)}", evidence=tail(log_path(settings), settings.log_tail_lines)
        ) from None


exit_code = children.exit_code
stop = children.stop
