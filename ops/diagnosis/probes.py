"""diagnose's probes of everything but the database: the state file, the Docker engine, the API,
the declared processes and the last command's steps. Each is bounded by PROBE_TIMEOUT_S, and an
unexpected failure of one becomes a problem line (`guard`), never a crash."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from ops import api
from ops.api_workers import described
from ops.diagnosis.findings import ApiFindings, EngineFindings, FailedStep, ProcessFindings
from ops.errors import first_line
from ops.procs import pid_alive, rss_mb, tail
from ops.settings import Settings
from ops.state import StackState, StateProblem, StepRecord, load_state

T = TypeVar("T")
PROBE_TIMEOUT_S = 2
LOG_TAIL_LINES = 20
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
            from ops.docker_engine import try_connect

            self._tried = True
            self._client, self.reason = try_connect(timeout=PROBE_TIMEOUT_S)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def guard(problems: list[str], what: str, probe: Callable[[], T]) -> T | None:
    """Run one probe; an unexpected failure becomes a problem line, never a crash."""
    try:
        return probe()
    except Exception as exc:
        problems.append(f"could not inspect {what}: {type(exc).__name__}: {first_line(exc)}")
        return None


# --- the state file and the backend --------------------------------------------------------


def read_state(settings: Settings, problems: list[str]) -> tuple[StackState, str]:
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


def backend_of(settings: Settings, state: StackState, docker: DockerProbe) -> tuple[str | None, str]:
    """The stack's backend: as recorded, as set, or guessed from what exists on disk or in Docker."""
    from ops.backends.docker import DockerBackend
    from ops.backends.embedded import EmbeddedBackend

    recorded = state.db.backend
    if recorded:
        return str(recorded), "recorded in the state file"
    if settings.backend != "auto":
        return settings.backend, "chosen by setting"
    if (EmbeddedBackend(settings, state.db).data_dir / "PG_VERSION").exists():
        return "embedded", "a data directory exists"
    if docker.client is not None:
        with contextlib.suppress(Exception):
            if DockerBackend(settings, state.db, client=docker.client).describe().container is not None:
                return "docker", "a container of this stack exists"
    return None, "nothing recorded or found"


# --- the Docker engine ---------------------------------------------------------------------


def engine_findings(docker: DockerProbe, problems: list[str]) -> EngineFindings:
    from ops.docker_engine import engine_address

    facts = EngineFindings(engine_address())
    if docker.client is None:
        facts.reason = docker.reason
        problems.append(f"no Docker engine answers at {facts.address} ({docker.reason})")
        return facts
    facts.answers = True
    facts.version = engine_version(docker)
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


# --- the API -------------------------------------------------------------------------------


def api_findings(settings: Settings, state: StackState, problems: list[str]) -> ApiFindings:
    recorded = state.api
    facts = ApiFindings(recorded.pid, api.recorded_url(settings, state), str(api.log_path(settings)))
    was_recorded = recorded.pid is not None or recorded.url is not None
    guard(problems, "the API", lambda: _probe_api(settings, was_recorded, facts, problems))
    guard(problems, "the API's workers", lambda: _workers(settings, state, facts, problems))
    return facts


def _workers(settings: Settings, state: StackState, facts: ApiFindings, problems: list[str]) -> None:
    """The API's RSS and, with several workers, each one's pid and RSS; fewer than declared is a problem."""
    facts.rss_mb = rss_mb(state.api.pid) if facts.alive else None
    if not facts.alive or api.expected_workers(state.api) < 2:
        return
    workers = api.workers(settings, state.api)
    facts.workers = described(workers)
    if not workers.complete:
        where = f"supervisor pid {state.api.pid}"
        problems.append(f"the API is degraded: {workers.shortfall()} ({where}); `invoke up` reloads it")


def _probe_api(settings: Settings, recorded: bool, facts: ApiFindings, problems: list[str]) -> None:
    """Is the recorded uvicorn alive (and ours), and what does GET /health answer?"""
    pid, url = facts.pid, facts.url
    facts.alive = alive = pid_alive(pid)
    facts.ours = api.is_ours(pid, settings)
    if not alive and not recorded:
        return
    health = api.probe(url, timeout=PROBE_TIMEOUT_S)
    facts.health, facts.health_body = health.status, health.body
    if alive and health.status != 200:
        answer = f"answered {health.status}: {health.body}" if health.status else f"no answer ({health.body})"
        problems.append(f"the API (pid {pid}) is alive but /health {answer}")
    elif not alive and pid:
        problems.append(f"the API (pid {pid}) is not running; see {facts.log}")
        if health.status is not None:
            problems.append(f"something else answers at {url} (/health {health.status})")
    elif not alive and health.status is not None:
        problems.append(f"no API recorded, yet something answers at {url} (/health {health.status})")


# --- declared processes and the last command's steps --------------------------------------


def process_findings(
    settings: Settings, state: StackState, problems: list[str]
) -> dict[str, ProcessFindings]:
    """Each process of stack.toml the state records: pid, whether it runs (and is ours), its log."""
    from ops import processes

    facts = {}
    for name, record in state.processes.items():
        running = processes.is_ours(settings, name, record.pid)
        facts[name] = ProcessFindings(record.pid, running, record.started_at, record.log)
        if not running:
            problems.append(f"process {name} is not running (pid {record.pid}); see {record.log}")
    return facts


def step_summary(step: StepRecord) -> dict[str, Any]:
    return step.model_dump(include={"name", "status", "attempts", "started_at", "duration_s", "detail"})


def failed_step(settings: Settings, state: StackState) -> FailedStep | None:
    step = next((s for s in state.steps if s.status == "FAIL"), None)
    if step is None:
        return None
    name = step.name
    component = STEP_LOGS.get(name) or (name if name in state.processes else None)
    log = settings.log_file(component) if component else None
    return FailedStep(name, step.detail, step.evidence, str(log) if log else None, tail(log, LOG_TAIL_LINES))
