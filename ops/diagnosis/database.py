"""diagnose's probes of the database: its server as its backend sees it, then the app's own path
to it (version, extensions, schema, TLS) and which servers the writes and the reads reach."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from app.replication import LAG_DEGRADED_S as REPLICA_LAG_DEGRADED_S
from app.replication import address
from ops.backends.base import ServerFacts
from ops.dbcheck import REQUIRED_EXTENSIONS, schema_revision
from ops.diagnosis.findings import DbFindings
from ops.diagnosis.probes import PROBE_TIMEOUT_S, DockerProbe, guard
from ops.endpoint import Endpoint
from ops.errors import first_line
from ops.secrets import redact
from ops.settings import Settings
from ops.state import StackState
from ops.tls import tls_facts

if TYPE_CHECKING:
    from ops.backends.base import DatabaseBackend


def owner(
    settings: Settings, state: StackState, backend: str | None, docker: DockerProbe
) -> DatabaseBackend | None:
    """The backend whose server the harness runs and can see: embedded, or docker with an engine."""
    if backend == "embedded":
        from ops.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(settings, state.db)
    if backend == "docker" and docker.client is not None:
        from ops.backends.docker import DockerBackend

        return DockerBackend(settings, state.db, client=docker.client)
    return None


def db_findings(
    settings: Settings, state: StackState, backend: str | None, docker: DockerProbe, problems: list[str]
) -> DbFindings:
    host, port = state.db.host, state.db.port
    facts = DbFindings(
        host=host,
        port=port,
        configured=f"{host}:{port}" if port else None,
        log=str(settings.log_file("db")),
    )
    server = owner(settings, state, backend, docker)
    if server is not None:
        what = "embedded PostgreSQL" if backend == "embedded" else "the container"
        seen = guard(problems, what, server.describe)
        if seen is not None:
            _observe(facts, seen)
    elif backend == "external":
        facts.running = None  # not ours to see; reachability alone tells
    if facts.actual_port:
        facts.actual = f"{settings.db_host}:{facts.actual_port}"
        if port and int(port) != int(facts.actual_port):
            facts.drift = True
            problems.append(
                f"port drift: the state file (and the app's DSN) says {host}:{port}, "
                f"but PostgreSQL is on {facts.actual}"
            )
    if server is not None and not facts.running and port:
        if backend == "docker":
            name = facts.container or getattr(server, "container_name", None)
            where = f"container {name} {facts.container_state}"
        else:
            where = f"postmaster pid {facts.pid}" if facts.pid else "no postmaster.pid"
        problems.append(f"PostgreSQL ({backend}) is not running ({where}); see {facts.log}")
    guard(problems, "the database", lambda: _probe_database(settings, state, facts, problems))
    return facts


def _observe(facts: DbFindings, server: ServerFacts) -> None:
    """What the backend sees of its server: the postmaster, or the container (when one exists and,
    for its state, id, exit code and port, when it is this stack's)."""
    if server.backend == "embedded":
        facts.pid, facts.running, facts.data_dir = server.pid, bool(server.running), server.data_dir
        facts.actual_port = server.port
        return
    facts.container_state = server.container_state
    if server.container is None:
        return
    facts.container = server.container
    if server.ours:
        facts.container_name, facts.running, facts.actual_port = (
            server.container_name,
            bool(server.running),
            server.port,
        )
        facts.exit_code, facts.oom_killed = server.exit_code, server.oom_killed


def _probe_database(settings: Settings, state: StackState, facts: DbFindings, problems: list[str]) -> None:
    """Connect as the app does (its DSN from the state file); read version, extensions, schema."""
    from ops.migrate import head_revision
    from ops.session import recorded_endpoint

    facts.head = head_revision(settings.project_dir)
    endpoint = recorded_endpoint(settings, state)
    if endpoint is None:
        facts.error = "no endpoint recorded (never started)"
        return
    facts.dsn = endpoint.masked_url()
    kwargs = endpoint.connect_kwargs(PROBE_TIMEOUT_S)
    kwargs["options"] = " ".join(
        filter(None, [kwargs.get("options"), f"-c statement_timeout={PROBE_TIMEOUT_S}s"])
    )
    try:
        with psycopg.connect(**kwargs) as conn:
            facts.tls = tls_facts(conn).as_dict()
            facts.server_version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            rows = conn.execute(
                "SELECT extname, extversion FROM pg_extension WHERE extname = ANY(%s)",
                (list(REQUIRED_EXTENSIONS),),
            ).fetchall()
        facts.schema = schema_revision(endpoint, PROBE_TIMEOUT_S)
    except psycopg.Error as exc:
        facts.error = redact(first_line(exc), [endpoint.password])
        problems.append(f"the database is unreachable with the app's DSN ({facts.dsn}): {facts.error}")
        return
    facts.reachable = True
    guard(problems, "the servers", lambda: _servers(settings, endpoint, facts, problems))
    facts.extensions = {name: version for name, version in rows}
    missing = [name for name in REQUIRED_EXTENSIONS if name not in facts.extensions]
    if missing:
        problems.append(f"extension(s) not installed: {', '.join(missing)}")
    facts.at_head = facts.schema == facts.head
    if not facts.at_head:
        problems.append(f"schema at {facts.schema or 'base'}, head is {facts.head} (run `invoke migrate`)")


def _servers(settings: Settings, endpoint: Endpoint, facts: DbFindings, problems: list[str]) -> None:
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
    facts.servers = servers
    lag = servers["reads"].get("lag_s")
    if lag is not None and lag > REPLICA_LAG_DEGRADED_S:
        bound = REPLICA_LAG_DEGRADED_S
        problems.append(f"the API reads from a standby {lag:.1f} s behind (over {bound:g} s)")
    if endpoint.more_hosts:
        probes = each_host(endpoint, PROBE_TIMEOUT_S)
        facts.hosts = [probe.as_dict() for probe in probes]
        first, writes = probes[0], servers["writes"].get("server")
        if writes and (first.server is None or first.server.standby):
            where = address(first.host, first.port)
            problems.append(f"the DSN's first host {where} is not the primary ({writes} is)")
