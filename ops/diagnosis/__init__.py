"""`invoke diagnose`: what runs, where, and what is wrong, from the state file and live probes.

Read-only: it takes no lock and moves, starts or stops nothing (a corrupt state file is
reported, not set aside); it only keeps its last /metrics scrapes in `<state_dir>/metrics-last.json`
for the "last minute" figures (`metrics`). Every live probe is bounded by PROBE_TIMEOUT_S (psycopg's
connect_timeout and a statement_timeout, httpx's timeout, the Docker SDK's client
timeout), so it answers within seconds whatever state the stack is in.

The probes fill typed findings (`findings`): the database's (`database`, which reads its server
through the backend's `describe()`), the rest's (`probes`); `diagnose` assembles them into the
JSON report, and `render` turns that into the table for people.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops import orphans
from ops.diagnosis.database import db_findings
from ops.diagnosis.findings import ApiFindings, DbFindings
from ops.diagnosis.metrics import MetricsFindings, Scrape, read_metrics, scrape
from ops.diagnosis.probes import (
    PROBE_TIMEOUT_S,
    DockerProbe,
    api_findings,
    backend_of,
    engine_findings,
    engine_version,
    failed_step,
    process_findings,
    read_state,
    step_summary,
)
from ops.diagnosis.render import render
from ops.secrets import redact_tree
from ops.settings import COMPONENTS, Settings
from ops.state import StackState

__all__ = ["Diagnosis", "command", "diagnose", "diagnosis", "engine_version", "render"]

HEALTHY, DEGRADED, NOT_RUNNING = "healthy", "degraded", "not running"
EXIT_CODES = {HEALTHY: 0, DEGRADED: 1, NOT_RUNNING: 2}


@dataclass(frozen=True)
class Diagnosis:
    """The report, the state's secrets (to mask in anything else written alongside) and the raw scrape."""

    report: dict[str, Any]
    secrets: list[str]
    scrape: Scrape | None


def command(settings: Settings, as_json: bool, bundle: Any, cwd: Path) -> int:
    """`invoke diagnose`: the table (or JSON) on stdout; with `bundle` (True or a PATH) the archive's path
    on stdout and what it holds on stderr instead. Returns diagnose's exit code."""
    if bundle is not None:
        from ops.diagnosis.bundle import bundle_at

        written = bundle_at(settings, bundle, cwd)
        print(written.path)
        print(written.summary, file=sys.stderr)
        return int(written.report["exit_code"])
    report = diagnose(settings)
    print(json.dumps(report, indent=2, ensure_ascii=False) if as_json else render(report))
    return int(report["exit_code"])


def diagnose(settings: Settings) -> dict[str, Any]:
    """The whole report as a JSON-ready dict with stable keys; secrets masked."""
    return diagnosis(settings).report


def diagnosis(settings: Settings) -> Diagnosis:
    """The report (see `diagnose`), with what `--bundle` also keeps."""
    began = time.monotonic()
    problems: list[str] = []
    api_problems: list[str] = []
    state, state_status = read_state(settings, problems)
    docker = DockerProbe()
    # The API is probed alongside the database: a frozen server costs one timeout, not two.
    with ThreadPoolExecutor(max_workers=1) as pool:
        api_probe = pool.submit(_api_and_metrics, settings, state, api_problems)
        try:
            backend, backend_source = backend_of(settings, state, docker)
            engine = engine_findings(docker, problems) if backend == "docker" else None
            db = db_findings(settings, state, backend, docker, problems)
        finally:
            docker.close()
        api_facts, metrics, got = api_probe.result()
    problems += api_problems
    declared = process_findings(settings, state, problems)
    stray = [mark.describe() for mark in orphans.find(settings, state)]
    problems += [f"orphaned {line}: running, but the state file does not know it" for line in stray]
    failed = failed_step(settings, state)
    if failed:
        problems.append(f"the last command ({state.last_command}) failed at step {failed.name}")
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
        "db": db.as_dict(),
        "engine": engine.as_dict() if engine else None,
        "api": api_facts.as_dict(),
        "metrics": metrics.as_dict(),
        "processes": {name: facts.as_dict() for name, facts in declared.items()},
        "orphans": stray,
        "last_command": state.last_command,
        "updated_at": state.updated_at,
        "steps": [step_summary(step) for step in state.steps],
        "failed_step": failed.as_dict() if failed else None,
        "logs": {name: str(settings.log_file(name)) for name in COMPONENTS},
        "elapsed_s": round(time.monotonic() - began, 3),
    }
    return Diagnosis(redact_tree(report, state.secrets), state.secrets, got)


def _api_and_metrics(
    settings: Settings, state: StackState, problems: list[str]
) -> tuple[ApiFindings, MetricsFindings, Scrape | None]:
    """The API's findings, then its /metrics when something answers at its address (one thread)."""
    facts = api_findings(settings, state, problems)
    if facts.health is None:
        return facts, MetricsFindings(f"{facts.url}/metrics", note="not read: the API does not answer"), None
    got = scrape(facts.url, PROBE_TIMEOUT_S)
    try:
        return facts, read_metrics(got, settings.state_dir, time.time()), got
    except Exception as exc:  # a note, like every other way of not reading /metrics
        return facts, MetricsFindings(got.url, got.status, f"not read: {type(exc).__name__}: {exc}"), got


def _verdict(db: DbFindings, api_facts: ApiFindings, problems: list[str]) -> str:
    db_up = bool(db.running) or (db.running is None and db.reachable)
    if not db_up and not api_facts.alive:
        return NOT_RUNNING
    if not problems and db.reachable and db.at_head and api_facts.health == 200:
        return HEALTHY
    return DEGRADED
