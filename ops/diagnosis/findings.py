"""What diagnose finds, as typed records the probes fill in, and their JSON form.

A probe that fails part-way leaves the rest of its record at the defaults, so that the report
always has the same keys; the few keys that only some backends have are left out when unset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DbFindings:
    """The database: where the state file says it is, where it runs, and what answers there."""

    host: str | None = None
    port: int | None = None
    configured: str | None = None  # host:port as the state file (and the app's DSN) has it
    actual_port: int | None = None  # where the server really listens, as its backend sees it
    actual: str | None = None
    drift: bool = False
    running: bool | None = False  # None: not ours to see (external)
    pid: int | None = None
    container: str | None = None
    container_state: str | None = None
    reachable: bool = False
    error: str | None = None
    dsn: str | None = None
    server_version: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    schema: str | None = None
    head: str | None = None
    at_head: bool = False
    tls: dict[str, Any] | None = None
    log: str = ""
    # Only some stacks have these (left out of the JSON when unset):
    data_dir: str | None = None  # embedded
    container_name: str | None = None  # docker, with exit_code and oom_killed: a container of ours
    exit_code: int | None = None
    oom_killed: bool | None = None
    servers: dict[str, Any] | None = None  # which server the writes and the reads reach
    hosts: list[dict[str, Any]] | None = None  # each host of a multi-host DSN on its own

    def as_dict(self) -> dict[str, Any]:
        facts = asdict(self)
        ours = self.container_name is not None  # a container of ours: its name, exit code and OOM flag
        for name in ("data_dir", "container_name", "exit_code", "oom_killed", "servers", "hosts"):
            value = facts.pop(name)
            if value is not None or (ours and name in ("exit_code", "oom_killed")):
                facts[name] = value
        return facts


@dataclass
class EngineFindings:
    """The Docker engine (for a docker stack): its address, whether it answers, its version."""

    address: str
    answers: bool = False
    version: str | None = None
    reason: str | None = None  # why it does not answer

    def as_dict(self) -> dict[str, Any]:
        facts = asdict(self)
        if self.reason is None:
            del facts["reason"]
        return facts


@dataclass
class ApiFindings:
    """The API: the recorded uvicorn (or warm server), whether it lives and is ours, its /health."""

    pid: int | None
    url: str
    log: str
    alive: bool = False
    ours: bool = False
    health: int | None = None
    health_body: str | None = None
    rss_mb: float | None = None
    workers: dict[str, Any] | None = None  # with several: {expected, running, pids: [{pid, rss_mb}]}

    def as_dict(self) -> dict[str, Any]:
        keys = ("pid", "alive", "ours", "url", "health", "health_body", "log", "rss_mb", "workers")
        return {key: getattr(self, key) for key in keys}


@dataclass(frozen=True)
class ProcessFindings:
    """A process of stack.toml the state records."""

    pid: int | None
    running: bool
    started_at: str | None
    log: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FailedStep:
    """The last command's failing step, with its evidence and its component's log tail."""

    name: str
    detail: str
    evidence: str
    log: str | None
    log_tail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
