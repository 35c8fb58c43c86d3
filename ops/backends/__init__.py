"""Where PostgreSQL comes from: embedded, docker or external, chosen by `select_backend`."""

from __future__ import annotations

from typing import Any

from ops.backends.base import DatabaseBackend, Endpoint, Started
from ops.errors import BackendUnavailable
from ops.settings import Settings

__all__ = ["DatabaseBackend", "Endpoint", "Started", "select_backend"]


def select_backend(settings: Settings, state: dict[str, Any]) -> tuple[DatabaseBackend, str]:
    """The backend for this stack, and why it was chosen.

    `auto` keeps the backend the stack already has; a new stack gets docker when an
    engine answers, else embedded.
    """
    choice, why = settings.backend, "chosen by setting"
    if choice == "auto":
        recorded = state.get("db", {}).get("backend")
        if recorded in ("embedded", "docker", "external"):
            choice, why = recorded, "the stack already uses it"
        else:
            choice, why = "embedded", "auto: the docker backend is not available in this version"
    if choice == "embedded":
        from ops.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(settings, state), why
    if choice == "external":
        from ops.backends.external import ExternalBackend

        return ExternalBackend(settings, state), why
    raise BackendUnavailable(
        "the docker backend is not available in this version",
        "use --backend embedded (the default) or --backend external with DATABASE_URL",
    )
