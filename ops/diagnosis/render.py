"""diagnose's report for people: one line per fact, the last command's steps, problems and logs.

It reads the report's JSON form (as `invoke diagnose --json` prints it and `invoke ci` keeps it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.replication import standby_state
from ops.diagnosis.metrics import metrics_lines
from ops.diagnosis.probes import LOG_TAIL_LINES
from ops.tls import TlsFacts


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
    lines += metrics_lines(report.get("metrics"))
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
