"""The service's own settings, from the environment the harness (or a user) sets."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from app.replication import LAG_DEGRADED_S


class AppSettings(BaseSettings):
    """DATABASE_URL is required; the rest have safe defaults."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str
    read_database_url: str | None = None  # a replica to read from; reads use database_url without it
    statement_timeout_ms: int = 2000
    connect_timeout_s: int = 2
    replica_lag_degraded_s: float = LAG_DEGRADED_S  # /health says "degraded" (still 200) past this lag


@lru_cache(maxsize=1)
def get_settings() -> AppSettings:
    return AppSettings()  # type: ignore[call-arg]


class ObservabilitySettings(BaseSettings):
    """METRICS (on: /metrics and the request counters; off: neither, for the bench) and LOG_FORMAT
    (json: one JSON object a line; text: the same content for a human). Apart from AppSettings so
    that they are read before, and without, DATABASE_URL."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    metrics: bool = True
    log_format: Literal["json", "text"] = "json"
