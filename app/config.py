"""The service's own settings, from the environment the harness (or a user) sets."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class AppSettings(BaseSettings):
    """DATABASE_URL is required; the rest have safe defaults."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str
    statement_timeout_ms: int = 2000
    connect_timeout_s: int = 2


@lru_cache(maxsize=1)
def get_settings() -> AppSettings:
    return AppSettings()  # type: ignore[call-arg]
