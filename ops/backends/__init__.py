"""Where PostgreSQL comes from: embedded, docker or external, chosen by `select_backend`."""

from __future__ import annotations

from typing import Any

from ops.backends.base import DatabaseBackend, Endpoint, Started
from ops.settings import Settings

__all__ = ["DatabaseBackend", "Endpoint", "Started", "select_backend"]


def select_backend(settings: Settings, state: dict[str, Any]) -> tuple[DatabaseBackend, str]:
    """The backend for this stack, and why it was chosen.

    `auto` keeps the backend the stack already has; a new stack gets docker when an
    engine answers a ping within a short timeout, else embedded.
    """
    choice, why = settings.backend, "chosen by setting"
    if choice == "auto":
        recorded = state.get("db", {}).get("backend")
        if recorded in ("embedded", "docker", "external"):
            choice, why = recorded, "the stack already uses it"
        else:
            from ops.engine import engine_answers

            answers, reason = engine_answers()
            choice = "docker" if answers else "embedded"
            why = f"auto: {reason}" if answers else f"auto: {reason}; using embedded"
    if choice == "embedded":
        from ops.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(settings, state), why
    if choice == "external":
        from ops.backends.external import ExternalBackend

        return ExternalBackend(settings, state), why
    from ops.backends.docker import DockerBackend

    return DockerBackend(settings, state), why
