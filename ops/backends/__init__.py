"""Where PostgreSQL comes from: embedded, docker or external, chosen by `select_backend`."""

from __future__ import annotations

from ops.backends.base import DatabaseBackend, Started
from ops.endpoint import Endpoint
from ops.settings import Settings
from ops.state import StackState
from ops.steps import Emit

__all__ = ["DatabaseBackend", "Endpoint", "Started", "select_backend"]


def select_backend(settings: Settings, state: StackState, emit: Emit = print) -> tuple[DatabaseBackend, str]:
    """The backend for this stack, and why it was chosen.

    `auto` keeps the backend the stack already has. A new stack gets docker only when it can
    deliver: an engine answers *and* an image is present, pullable or buildable offline;
    otherwise embedded, and the reason says why docker could not.
    """
    choice: str = settings.backend
    why = "chosen by setting"
    if choice == "auto":
        recorded = state.db.backend
        if recorded in ("embedded", "docker", "external"):
            choice, why = recorded, "the stack already uses it"
        else:
            from ops.backends.docker import DockerBackend

            docker = DockerBackend(settings, state.db, emit)
            delivers, reason = docker.can_deliver()
            if delivers:
                return docker, f"auto: {reason}"
            docker.close()
            choice, why = "embedded", f"auto: {reason}; using embedded"
    if choice == "embedded":
        from ops.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(settings, state.db), why
    if choice == "external":
        from ops.backends.external import ExternalBackend

        return ExternalBackend(settings, state.db), why
    from ops.backends.docker import DockerBackend

    return DockerBackend(settings, state.db, emit), why
