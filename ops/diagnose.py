"""`invoke diagnose`: what runs, where, and what is wrong, from the state file and live probes.

Read-only: it takes no lock and moves, starts or stops nothing (a corrupt state file is
reported, not set aside). Every live probe is bounded by PROBE_TIMEOUT_S (psycopg's
connect_timeout and a statement_timeout, httpx's timeout, the Docker SDK's client
timeout), so it answers within seconds whatever state the stack is in.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from app.replication import LAG_DEGRADED_S as REPLICA_LAG_DEGRADED_S
from app.replication import address, standby_state
from ops import api, orphans
from ops.api_workers import described
from ops.artifacts import redact_tree
from ops.backends.base import Endpoint
from ops.dbcheck import REQUIRED_EXTENSIONS, first_line, schema_revision
from ops.procs import pid_alive, rss_mb, tail
from ops.secrets import redact
from ops.settings import Settings
from ops.state import StackState, StateProblem, StepRecord, load_state
from ops.tls import TlsFacts, tls_facts

PROBE_TIMEOUT_S = 2
LOG_TAIL_LINES = 20
HEALTHY, DEGRADED, NOT_RUNNING = "healthy", "degraded", "not running"
EXIT_CODES = {HEALTHY: 0, DEGRADED: 1, NOT_RUNNING: 2}
STEP_LOGS = {
    **dict.fromkeys(("db", "db-ready", "db-stop", "volumes", "seed"), "db"),
    **dict.fromkeys(("api-start", "api-health", "api-stop"), "api"),
    "migrate": "migrate",
}


class DockerProbe:
    """One Docker client for the whole report, connected on first use with a short timeout."""

    def __init__(self) -> None:
        self._client: Any = None
        self.reason = ""
        self._tried = False

    @property
    def client(self) -> Any:
        if not self._tried:
            from ops.engine import try_connect

            self._tried = True
            self._client, self.reason = try_connect(timeout=PROBE_TIMEOUT_S)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def diagnose(settings: Settings) -> dict[str, Any]:
    """The whole report as a JSON-ready dict with stable keys; secrets masked."""
    began = time.monotonic()
    problems: list[str] = []
    api_problems: list[str] = []
    state, state_status = _read_state(settings, problems)
    docker = DockerProbe()
    # The API is probed alongside the database: a frozen server costs one timeout, not two.
    with ThreadPoolExecutor(max_workers=1) as pool:
        api_probe = pool.submit(_api_facts, settings, state, api_problems)
        try:
            backend, backend_source = _backend(settings, state, docker)
            engine = _engine_facts(docker, problems) if backend == "docker" else None
            db = _db_facts(settings, state, backend, docker, problems)
        finally:
            docker.close()
        api_facts = api_probe.result()
    problems += api_problems
    declared = _process_facts(settings, state, problems)
    stray = [mark.describe() for mark in orphans.find(settings, state)]
    problems += [f"orphaned {line}: running, but the state file does not know it" for line in stray]
    steps = [_step_summary(step) for step in state.steps]
    failed = _failed_step(settings, state)
    if failed:
        problems.append(f"the last command ({state.last_command}) failed at step {failed['name']}")
    verdict = _verdict(db, api_facts, problems)
    report = {
        "stack": settings.stack,
        "state_file": str(settings.state_file),
        "state": state_status,
        "backend": backend,
        "backend_source": backend_source,
        "verdict": verdict,
        "healthy": verdict == HEALTHY,
        "exit_code": EXIT_CODES[verdict],
        "problems": problems,
        "db": db,
        "engine": engine,
        "api": api_facts,
        "processes": declared,
        "orphans": stray,
        "last_command": state.last_command,
        "updated_at": state.updated_at,
        "steps": steps,
        "failed_step": failed,
        "logs": {name: str(settings.logs_dir / f"{name}.log") for name in ("db", "api", "migrate")},
        "elapsed_s": round(time.monotonic() - began, 3),
    }
    return redact_tree(report, state.secrets)


# --- the state file ----------------------------------------------------------------------


def _read_state(settings: Settings, problems: list[str]) -> tuple[StackState, str]:
    try:
        state = load_state(settings.state_file)
    except StateProblem as problem:
        problems.append(f"state file unusable: {problem} (the next `invoke up` sets it aside as .bad)")
        return StackState(), "corrupt"
    except OSError as exc:
        problems.append(f"state file unreadable: {settings.state_file}: {exc.strerror}")
        return StackState(), "unreadable"
    if not settings.state_file.exists():
        problems.append(f"never started: no state file at {settings.state_file} (run `invoke up`)")
        return state, "missing"
    return state, "ok"


def _backend(settings: Settings, state: StackState, docker: DockerProbe) -> tuple[str | None, str]:
    """The stack's backend: as recorded, as set, or guessed from what exists on disk or in Docker."""
    recorded = state.db.backend
    if recorded:
        return str(recorded), "recorded in the state file"
    if settings.backend != "auto":
        return settings.backend, "chosen by setting"
    if (settings.state_dir / "pgdata" / "PG_VERSION").exists():
        return "embedded", "a data directory exists"
    if docker.client is not None:
        with contextlib.suppress(Exception):
            docker.client.containers.get(_container_name(settings, state))
            return "docker", "a container of this stack exists"
    return None, "nothing recorded or found"


# --- the database ------------------------------------------------------------------------


def _db_facts(
    settings: Settings,
    state: StackState,
    backend: str | None,
    docker: DockerProbe,
    problems: list[str],
) -> dict[str, Any]:
    host, port = state.db.host, state.db.port
    facts: dict[str, Any] = {
        "host": host,
        "port": port,
        "configured": f"{host}:{port}" if port else None,
        "actual_port": None,
        "actual": None,
        "drift": False,
        "running": False,
        "pid": None,
        "container": None,
        "container_state": None,
        "reachable": False,
        "error": None,
        "dsn": None,
        "server_version": None,
        "extensions": {},
        "schema": None,
        "head": None,
        "at_head": False,
        "tls": None,
        "log": str(settings.logs_dir / "db.log"),
    }
    observed = False
    if backend == "embedded":
        _guard(problems, "embedded PostgreSQL", lambda: facts.update(_embedded_process(settings, state)))
        observed = True
    elif backend == "docker" and docker.client is not None:
        _guard(problems, "the container", lambda: facts.update(_container(settings, state, docker.client)))
        observed = True
    elif backend == "external":
        facts["running"] = None  # not ours to see; reachability alone tells
    if facts["actual_port"]:
        facts["actual"] = f"{settings.db_host}:{facts['actual_port']}"
        if port and int(port) != int(facts["actual_port"]):
            facts["drift"] = True
            problems.append(
                f"port drift: the state file (and the app's DSN) says {host}:{port}, "
                f"but PostgreSQL is on {facts['actual']}"
            )
    if observed and not facts["running"] and port:
        if backend == "docker":
            name = facts["container"] or _container_name(settings, state)
            where = f"container {name} {facts['container_state']}"
        else:
            where = f"postmaster pid {facts['pid']}" if facts["pid"] else "no postmaster.pid"
        problems.append(f"PostgreSQL ({backend}) is not running ({where}); see {facts['log']}")
    _guard(problems, "the database", lambda: _probe_database(settings, state, facts, problems))
    return facts


def _embedded_process(settings: Settings, state: StackState) -> dict[str, Any]:
    from ops.backends.embedded import EmbeddedBackend

    described = EmbeddedBackend(settings, state.db).describe()
    running = bool(described["running"])
    return {
        "pid": described["pid"],
        "running": running,
        "actual_port": described["port"] if running else None,
        "data_dir": described["data_dir"],
    }


def _container(settings: Settings, state: StackState, client: Any) -> dict[str, Any]:
    """The stack's container as the engine sees it: id, state, exit code and published port."""
    from docker.errors import NotFound

    from ops import labels

    try:
        container = client.containers.get(_container_name(settings, state))
    except NotFound:
        return {"container_state": "absent"}
    if container.labels.get(labels.STACK) != settings.stack:
        return {"container_state": "not created by this harness", "container": container.short_id}
    if container.labels.get(labels.PROJECT) not in (None, str(settings.project_dir)):
        owner = container.labels[labels.PROJECT]
        return {"container_state": f"of another checkout ({owner})", "container": container.short_id}
    run_state = container.attrs.get("State", {})
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get("5432/tcp") or []
    published = next((int(b["HostPort"]) for b in bindings if b.get("HostPort")), None)
    return {
        "container": container.short_id,
        "container_name": container.name,
        "container_state": container.status,
        "running": container.status == "running",
        "exit_code": run_state.get("ExitCode"),
        "oom_killed": run_state.get("OOMKilled"),
        "actual_port": published,
    }


def _probe_database(
    settings: Settings, state: StackState, facts: dict[str, Any], problems: list[str]
) -> None:
    """Connect as the app does (its DSN from the state file); read version, extensions, schema."""
    from ops.migrate import head_revision
    from ops.stack import recorded_endpoint

    facts["head"] = head_revision(settings.project_dir)
    endpoint = recorded_endpoint(settings, state)
    if endpoint is None:
        facts["error"] = "no endpoint recorded (never started)"
        return
    facts["dsn"] = endpoint.masked_url()
    kwargs = endpoint.connect_kwargs(PROBE_TIMEOUT_S)
    kwargs["options"] = " ".join(
        filter(None, [kwargs.get("options"), f"-c statement_timeout={PROBE_TIMEOUT_S}s"])
    )
    try:
        with psycopg.connect(**kwargs) as conn:
            facts["tls"] = tls_facts(conn).as_dict()
            facts["server_version"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            rows = conn.execute(
                "SELECT extname, extversion FROM pg_extension WHERE extname = ANY(%s)",
                (list(REQUIRED_EXTENSIONS),),
            ).fetchall()
        facts["schema"] = schema_revision(endpoint, PROBE_TIMEOUT_S)
    except psycopg.Error as exc:
        facts["error"] = redact(first_line(exc), [endpoint.password])
        problems.append(f"the database is unreachable with the app's DSN ({facts['dsn']}): {facts['error']}")
        return
    facts["reachable"] = True
    _guard(problems, "the servers", lambda: _servers(settings, endpoint, facts, problems))
    facts["extensions"] = {name: version for name, version in rows}
    missing = [name for name in REQUIRED_EXTENSIONS if name not in facts["extensions"]]
    if missing:
        problems.append(f"extension(s) not installed: {', '.join(missing)}")
    facts["at_head"] = facts["schema"] == facts["head"]
    if not facts["at_head"]:
        problems.append(
            f"schema at {facts['schema'] or 'base'}, head is {facts['head']} (run `invoke migrate`)"
        )


def _servers(settings: Settings, endpoint: Endpoint, facts: dict[str, Any], problems: list[str]) -> None:
    """Which server the writes and the API's reads reach (host, port, primary or standby and its
    lag); with several hosts, what each one is on its own."""
    from ops.servers import each_host, failures, reach

    reads = Endpoint.from_url(settings.read_database_url) if settings.read_database_url else endpoint
    servers: dict[str, Any] = {}
    for name, target in (("writes", endpoint.for_writes()), ("reads", reads)):
        try:
            servers[name] = reach(target, PROBE_TIMEOUT_S).as_dict()
        except psycopg.Error as exc:
            servers[name] = {"error": redact(failures(exc), [target.password])}
            problems.append(f"the {name} reach no server ({target.masked_url()}): {servers[name]['error']}")
    facts["servers"] = servers
    lag = servers["reads"].get("lag_s")
    if lag is not None and lag > REPLICA_LAG_DEGRADED_S:
        bound = REPLICA_LAG_DEGRADED_S
        problems.append(f"the API reads from a standby {lag:.1f} s behind (over {bound:g} s)")
    if endpoint.more_hosts:
        probes = each_host(endpoint, PROBE_TIMEOUT_S)
        facts["hosts"] = [probe.as_dict() for probe in probes]
        first, writes = probes[0], servers["writes"].get("server")
        if writes and (first.server is None or first.server.standby):
            where = address(first.host, first.port)
            problems.append(f"the DSN's first host {where} is not the primary ({writes} is)")


# --- Docker ------------------------------------------------------------------------------


def _container_name(settings: Settings, state: StackState) -> str:
    """The stack's container: as recorded, else the name this checkout's stack gets."""
    from ops.labels import container_name

    recorded = state.db.container_name
    return str(recorded or container_name(settings.stack, settings.project_dir))


def _engine_facts(docker: DockerProbe, problems: list[str]) -> dict[str, Any]:
    from ops.engine import engine_address

    facts: dict[str, Any] = {"address": engine_address(), "answers": False, "version": None}
    if docker.client is None:
        facts["reason"] = docker.reason
        problems.append(f"no Docker engine answers at {facts['address']} ({docker.reason})")
        return facts
    facts["answers"] = True
    facts["version"] = engine_version(docker)
    return facts


def engine_version(docker: DockerProbe | None = None) -> str | None:
    """The Docker engine's version, if one answers within PROBE_TIMEOUT_S."""
    probe = docker or DockerProbe()
    try:
        return None if probe.client is None else str(probe.client.version().get("Version"))
    except Exception:
        return None
    finally:
        if docker is None:
            probe.close()


# --- the API -----------------------------------------------------------------------------


def _api_facts(settings: Settings, state: StackState, problems: list[str]) -> dict[str, Any]:
    recorded = state.api
    facts: dict[str, Any] = {
        "pid": recorded.pid,
        "alive": False,
        "ours": False,
        "url": api.recorded_url(settings, state),
        "health": None,
        "health_body": None,
        "log": str(api.log_path(settings)),
        "rss_mb": None,
        "workers": None,  # with several: {expected, running, pids: [{pid, rss_mb}]}; pid is the supervisor's
    }
    _guard(
        problems,
        "the API",
        lambda: _probe_api(settings, recorded.pid is not None or recorded.url is not None, facts, problems),
    )
    _guard(problems, "the API's workers", lambda: _worker_facts(settings, state, facts, problems))
    return facts


def _worker_facts(settings: Settings, state: StackState, facts: dict[str, Any], problems: list[str]) -> None:
    """The API's RSS and, with several workers, each one's pid and RSS; fewer than declared is a problem."""
    facts["rss_mb"] = rss_mb(state.api.pid) if facts["alive"] else None
    if not facts["alive"] or api.expected_workers(state.api) < 2:
        return
    workers = api.workers(settings, state.api)
    facts["workers"] = described(workers)
    if not workers.complete:
        where = f"supervisor pid {state.api.pid}"
        problems.append(f"the API is degraded: {workers.shortfall()} ({where}); `invoke up` reloads it")


def _probe_api(settings: Settings, recorded: bool, facts: dict[str, Any], problems: list[str]) -> None:
    """Is the recorded uvicorn alive (and ours), and what does GET /health answer?"""
    pid, url = facts["pid"], facts["url"]
    facts["alive"] = alive = pid_alive(pid)
    facts["ours"] = api.is_ours(pid, settings)
    if not alive and not recorded:
        return
    health = api.probe(url, timeout=PROBE_TIMEOUT_S)
    facts["health"], facts["health_body"] = health.status, health.body
    if alive and health.status != 200:
        answer = f"answered {health.status}: {health.body}" if health.status else f"no answer ({health.body})"
        problems.append(f"the API (pid {pid}) is alive but /health {answer}")
    elif not alive and pid:
        problems.append(f"the API (pid {pid}) is not running; see {facts['log']}")
        if health.status is not None:
            problems.append(f"something else answers at {url} (/health {health.status})")
    elif not alive and health.status is not None:
        problems.append(f"no API recorded, yet something answers at {url} (/health {health.status})")


# --- declared processes ------------------------------------------------------------------


def _process_facts(settings: Settings, state: StackState, problems: list[str]) -> dict[str, Any]:
    """Each process of stack.toml the state records: pid, whether it runs (and is ours), its log."""
    from ops import processes

    facts = {}
    for name, record in state.processes.items():
        running = processes.is_ours(settings, name, record.pid)
        facts[name] = {
            "pid": record.pid,
            "running": running,
            "started_at": record.started_at,
            "log": record.log,
        }
        if not running:
            problems.append(f"process {name} is not running (pid {record.pid}); see {record.log}")
    return facts


# --- the last command's steps ------------------------------------------------------------


def _step_summary(step: StepRecord) -> dict[str, Any]:
    return step.model_dump(include={"name", "status", "attempts", "started_at", "duration_s", "detail"})


def _failed_step(settings: Settings, state: StackState) -> dict[str, Any] | None:
    step = next((s for s in state.steps if s.status == "FAIL"), None)
    if step is None:
        return None
    name = step.name
    component = STEP_LOGS.get(name) or (name if name in state.processes else None)
    log = settings.logs_dir / f"{component}.log" if component else None
    return {
        "name": name,
        "detail": step.detail,
        "evidence": step.evidence,
        "log": str(log) if log else None,
        "log_tail": tail(log, LOG_TAIL_LINES),
    }


# --- verdict and helpers -----------------------------------------------------------------


def _verdict(db: dict[str, Any], api_facts: dict[str, Any], problems: list[str]) -> str:
    db_up = bool(db["running"]) or (db["running"] is None and db["reachable"])
    if not db_up and not api_facts["alive"]:
        return NOT_RUNNING
    if not problems and db["reachable"] and db["at_head"] and api_facts["health"] == 200:
        return HEALTHY
    return DEGRADED


def _guard(problems: list[str], what: str, probe: Callable[[], Any]) -> None:
    """Run one probe; an unexpected failure becomes a problem line, never a crash."""
    try:
        probe()
    except Exception as exc:
        problems.append(f"could not inspect {what}: {type(exc).__name__}: {first_line(exc)}")


# --- the table for people ----------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    """A readable report: one line per fact, the last command's steps, problems and logs."""
    db, api_facts = report["db"], report["api"]
    lines = [f"stack      {report['stack']}  (state: {report['state_file']}, {report['state']})"]
    lines.append(f"backend    {report['backend'] or 'none'}  ({report['backend_source']})")
    if report["engine"]:
        engine = report["engine"]
        answer = (
            f"version {engine['version']}" if engine["answers"] else f"not answering ({engine.get('reason')})"
        )
        lines.append(f"engine     {engine['address']} {answer}")
    lines.append(f"process    {_process_line(report['backend'], db)}")
    drift = "  DRIFT" if db["drift"] else ""
    lines.append(f"address    configured {db['configured'] or '-'}, actual {db['actual'] or '-'}{drift}")
    lines.append(f"database   {_database_line(db)}")
    lines.append(f"schema     {db['schema'] or '-'} (head {db['head'] or '-'})")
    for name, server in (db.get("servers") or {}).items():
        lines.append(f"{name:<10} {_server_line(server)}")
    for number, host in enumerate(db.get("hosts") or [], start=1):
        lines.append(f"host {number:<5} {_server_line(host)}")
    lines.append(f"api        {_api_line(api_facts)}")
    for name, facts in report["processes"].items():
        alive = "running" if facts["running"] else "not running"
        lines.append(f"{name:<10} pid {facts['pid'] or '-'} {alive}  (log: {facts['log']})")
    lines.append(f"last run   {report['last_command'] or '-'} at {report['updated_at'] or '-'}")
    for step in report["steps"]:
        detail = " ".join(str(step["detail"] or "").split())[:90]
        duration = float(step.get("duration_s") or 0.0)
        lines.append(f"  {step['name']:<11} {step['status']:<5} {duration:7.2f} s  {detail}")
    failed = report["failed_step"]
    if failed:
        lines.append(f"failed     {failed['name']}: {failed['detail']}")
        for line in (failed["evidence"] or failed["log_tail"]).rstrip().splitlines()[-LOG_TAIL_LINES:]:
            lines.append(f"  | {line}")
    logs = report["logs"]
    lines.append(
        f"logs       {Path(logs['db']).parent}/{{db,api,migrate}}.log  (`invoke logs -c db|api|migrate`)"
    )
    for problem in report["problems"]:
        lines.append(f"problem    {problem}")
    lines.append(f"verdict    {report['verdict']} (exit {report['exit_code']}, {report['elapsed_s']:.2f} s)")
    return "\n".join(lines)


def _process_line(backend: str | None, db: dict[str, Any]) -> str:
    if backend == "docker":
        return f"container {db['container'] or '-'} {db['container_state'] or 'unknown'}"
    if backend == "embedded":
        return f"postmaster pid {db['pid'] or '-'} {'running' if db['running'] else 'not running'}"
    return "not ours to watch (external)" if backend == "external" else "none"


def _database_line(db: dict[str, Any]) -> str:
    if not db["reachable"]:
        return f"unreachable: {db['error'] or 'not probed'}"
    extensions = (
        ", ".join(f"{name} {version}" for name, version in db["extensions"].items()) or "no extensions"
    )
    tls = TlsFacts(**db["tls"]).describe() if db.get("tls") else "encryption unknown"
    return f"reachable as the app ({db['dsn']}), {tls}; PostgreSQL {db['server_version']}; {extensions}"


def _server_line(server: dict[str, Any]) -> str:
    """`127.0.0.1:5433 primary`, `... standby, lag 0.0 s (streaming)` or `... unreachable: why`."""
    if server.get("role") is None:
        where = f"{server['server']} " if server.get("server") else ""
        return f"{where}unreachable: {server.get('error')}"
    if server["role"] == "primary":
        return f"{server['server']} primary"
    return f"{server['server']} standby, {standby_state(server.get('lag_s'), server.get('receiving'))}"


def _api_line(facts: dict[str, Any]) -> str:
    if facts["pid"] is None and facts["health"] is None:
        return f"not started ({facts['url']})"
    alive = "alive" if facts["alive"] else "not running"
    health = f"/health {facts['health']}" if facts["health"] is not None else "/health no answer"
    workers = facts.get("workers")
    line = f"{'supervisor ' if workers else ''}pid {facts['pid']} {alive}, {facts['url']} {health}"
    if facts.get("rss_mb") is not None:
        line += f", RSS {facts['rss_mb']} MB"
    if workers:
        each = ", ".join(f"pid {w['pid']} {w['rss_mb'] or '?'} MB" for w in workers["pids"]) or "none"
        line += f"; {workers['running']}/{workers['expected']} workers: {each}"
    return line
