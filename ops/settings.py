"""One frozen settings object, layered: defaults < invoke.yaml < environment < flags.

`build_settings` is a pure function of its inputs (no I/O): tasks.py hands it Invoke's
merged configuration (defaults from `ns.configure` and `invoke.yaml`), the process
environment and the flags the user typed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ops import dsn
from ops.errors import UsageError
from ops.layout import state_dir_of

Backend = Literal["auto", "embedded", "docker", "external"]
ENV_PREFIX = "OPS_"

DEFAULTS: dict[str, Any] = {
    "stack": "homer",
    "backend": "auto",
    "db_host": "127.0.0.1",
    "db_port": 0,
    "db_name": "homer",
    "db_user": "homer",
    "api_host": "127.0.0.1",
    "api_port": None,  # DEFAULT_API_PORT, or a free port when another program holds it
    "app": "app.main:app",
    "api_workers": 1,  # the stack file's `workers`, below invoke.yaml, OPS_API_WORKERS and --api-workers
    "seed": True,
    "db_ready_timeout": 30.0,
    "migrate_timeout": 30.0,
    "api_health_timeout": 30.0,
    "retry_attempts": 200,
    "wait_initial": 0.02,
    "wait_max": 0.25,
    "log_tail_lines": 40,
    "docker_image": "pgvector/pgvector:pg18",
    "docker_offline_fallback": True,
}
DEFAULT_API_PORT = 8000


COMPONENTS = ("db", "api", "migrate")  # the stack's own components that keep a log


class Settings(BaseModel):
    """Everything `ops/` needs to know, resolved once and never changed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project_dir: Path
    state_dir: Path
    stack: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    backend: Backend
    database_url: str | None = None
    read_database_url: str | None = None  # where the API reads (a replica); writes use database_url
    db_host: str
    db_port: int = Field(ge=0, le=65535)
    db_name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    db_user: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    api_host: str
    api_port: int = Field(ge=0, le=65535)
    api_port_fixed: bool = False  # set by the user (invoke.yaml, env or flag): taken means exit 7
    app: str = Field(pattern=r"^[\w.]+:[\w.]+$")
    api_workers: int = Field(ge=1, le=64)  # API processes on one port (ops.api.server_for)
    seed: bool
    db_ready_timeout: float = Field(ge=0)
    migrate_timeout: float = Field(ge=0)
    api_health_timeout: float = Field(ge=0)
    retry_attempts: int = Field(ge=1)
    wait_initial: float = Field(ge=0)
    wait_max: float = Field(ge=0)
    log_tail_lines: int = Field(ge=1, le=10_000)
    docker_image: str
    docker_offline_fallback: bool

    @field_validator("db_host", "api_host")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(
                "must be an IP address: 127.0.0.1 (the default), or 0.0.0.0 to listen on every interface"
            ) from None

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _sync_postgres_url(cls, value: str | None) -> str | None:
        return None if value in (None, "") else dsn.normalise(value)

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def log_file(self, component: str) -> Path:
        """Where `component` (one of COMPONENTS, or a declared process) writes its log."""
        return self.logs_dir / f"{component}.log"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def db_connect_host(self) -> str:
        """Where clients reach PostgreSQL: db_host, or loopback when it listens on every interface."""
        return connect_host(self.db_host)

    def api_url_on(self, port: int) -> str:
        return f"http://{connect_host(self.api_host)}:{port}"

    @property
    def api_url(self) -> str:
        """The URL of the configured API port (the state file records the one actually bound)."""
        return self.api_url_on(self.api_port)


def connect_host(listen: str) -> str:
    """The address to connect to for a server listening on `listen` (wildcards mean loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(listen, listen)


def env_overrides(env: Mapping[str, str]) -> dict[str, str]:
    """Settings named in the environment: OPS_<NAME>, and DATABASE_URL (the external backend) and
    READ_DATABASE_URL (a replica the API reads from) as libpq tools name them."""
    found = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() in _FIELD_NAMES
    }
    for name in ("database_url", "read_database_url"):
        if env.get(name.upper()) and name not in found:
            found[name] = env[name.upper()]
    return found


def build_settings(
    project_dir: Path,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    declared: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers (later wins) and validate them into one frozen Settings:
    defaults < `declared` (what the stack file says) < `config` (invoke.yaml) < env < flags."""
    merged: dict[str, Any] = dict(DEFAULTS)
    for layer in (declared or {}, config or {}, env_overrides(env or {}), flags or {}):
        merged.update({key: value for key, value in layer.items() if value is not None})
    merged["project_dir"] = Path(project_dir).resolve()
    merged["api_port_fixed"] = merged["api_port"] is not None
    if merged["api_port"] is None:
        merged["api_port"] = DEFAULT_API_PORT
    merged["state_dir"] = state_dir_of(merged["project_dir"], merged.pop("state_dir", None))
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise UsageError(_describe(exc), "see `invoke --help up` and README 'Settings'") from None


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    name = ".".join(str(part) for part in first["loc"]) or "settings"
    if first["type"] == "extra_forbidden":
        return f"unknown setting {name!r}"
    value = first.get("input")
    shown = "" if name in ("database_url", "read_database_url") else f" {value!r}"
    message = re.sub(r"\s+", " ", first["msg"]).removeprefix("Value error, ")
    return f"invalid setting {name}{shown}: {message}"


_FIELD_NAMES = frozenset(Settings.model_fields) - {"project_dir", "api_port_fixed"}
