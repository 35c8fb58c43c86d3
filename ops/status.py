"""`invoke status`: one line per component, from the state file and live probes with short timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ops import api, schema_head
from ops.dbcheck import schema_revision
from ops.endpoint import Endpoint
from ops.errors import first_line
from ops.session import recorded_endpoint, warn
from ops.settings import Settings
from ops.state import ProcessRecord, StackState, load_state_or_fresh


@dataclass(frozen=True)
class Component:
    name: str
    healthy: bool
    line: str
    facts: dict[str, Any]


def status(settings: Settings) -> list[Component]:
    """One entry per component, from the state file and live probes with short timeouts."""
    state = load_state_or_fresh(settings.state_file, warn)
    declared = [_process_status(settings, name, record) for name, record in state.processes.items()]
    return [_db_status(settings, state), _api_status(settings, state), *declared]


def _process_status(settings: Settings, name: str, record: ProcessRecord) -> Component:
    from ops import processes

    facts: dict[str, Any] = {"pid": record.pid, "log": record.log}
    if not processes.is_ours(settings, name, record.pid):
        return Component(name, False, f"not running (log: {processes.log_path(settings, name)})", facts)
    return Component(name, True, f"pid {record.pid} running since {record.started_at}", facts)


def _db_status(settings: Settings, state: StackState) -> Component:
    import psycopg

    endpoint = recorded_endpoint(settings, state)
    backend_name = state.db.backend or "none"
    if endpoint is None:
        return Component("db", False, "not started (run `invoke up`)", {"backend": backend_name})
    where = endpoint.where
    facts: dict[str, Any] = {"backend": backend_name, "host": endpoint.host, "port": endpoint.port}
    writer = endpoint.for_writes()
    try:
        revision = schema_revision(writer, timeout=2)
        primary = _primary_note(writer, facts) if endpoint.more_hosts else ""
    except psycopg.Error as exc:
        from ops.servers import failures

        reason = failures(exc) if endpoint.more_hosts else first_line(exc)
        return Component("db", False, f"{backend_name} {where} unreachable: {reason}", facts)
    head = schema_head.head(settings.project_dir, state)
    facts.update(schema=revision, head=head)
    at_head = revision == head
    schema = f"schema {revision} (head)" if at_head else f"schema {revision}, head is {head}"
    return Component("db", at_head, f"{backend_name} {where} ready, {schema}{primary}", facts)


def _primary_note(writer: Endpoint, facts: dict[str, Any]) -> str:
    """For a multi-host DSN: which host is the primary, and a note when it is not the first one."""
    from app.replication import address
    from ops.servers import reach

    primary = reach(writer)
    facts["primary"] = primary.address
    if (primary.host, primary.port) == writer.hosts[0]:
        return f"; primary {primary.address}"
    first = address(*writer.hosts[0])
    return f"; primary {primary.address}, not the DSN's first host {first} (after a failover?)"


def _api_status(settings: Settings, state: StackState) -> Component:
    pid = state.api.pid
    url = api.recorded_url(settings, state)
    facts: dict[str, Any] = {"pid": pid, "url": url}
    if not api.is_ours(pid, settings):
        return Component("api", False, f"not running (log: {api.log_path(settings)})", facts)
    health = api.probe(url, timeout=2.0)
    facts["health"] = health.status
    healthy = health.status == 200
    answer = f"/health {health.status}" if health.status else f"/health no answer ({health.body})"
    if api.expected_workers(state.api) > 1:  # healthy only with all of them serving
        workers = api.workers(settings, state.api)
        facts.update(workers=workers.expected, worker_pids=list(workers.running))
        if not workers.complete:
            pids = ", ".join(map(str, workers.running)) or "none"
            where = f"supervisor pid {pid}, worker pids {pids}, {url} {answer}; `invoke up` heals it"
            return Component("api", False, f"degraded: {workers.shortfall()} ({where})", facts)
        answer += f", {workers.count()}"
    return Component("api", healthy, f"pid {pid} {url} {answer}", facts)
