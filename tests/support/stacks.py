"""Throwaway stacks: their settings, the docker names they get, and what tearing one down must remove."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ops import initdb_cache, labels
from ops.backends.embedded import EmbeddedBackend
from ops.docker_engine import try_connect
from ops.procs import free_port
from ops.settings import Settings, build_settings
from tests.support.paths import PROJECT_DIR
from tests.support.project import Project


def stack_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Settings for a throwaway stack: its own state dir, free API port, embedded backend, quick waits."""
    flags: dict[str, Any] = {
        "state_dir": str(state_dir),
        "backend": "embedded",
        "api_port": free_port(),
        "seed": False,
        "db_ready_timeout": 20,
        "api_health_timeout": 20,
    }
    flags.update(overrides)
    return build_settings(PROJECT_DIR, flags=flags)


def docker_names(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[str, str]:
    """The (container, volume) names the docker backend gives a new stack of that checkout."""
    return labels.scoped_names(stack, project_dir)


def backend_run(state_dir: Path) -> initdb_cache.Run:
    """The embedded backend's own way of running a binary as the runner."""
    return EmbeddedBackend(stack_settings(state_dir))._run


def leftovers(project: Project, stack: str | None = None) -> list[str]:
    """What a torn-down CI stack must not leave: its state folder, its containers and volumes."""
    left = [str(path) for path in (project.root / ".ops").glob("ci-*")]
    client, _ = try_connect(timeout=10)
    if client is not None:
        try:
            ours = labels.selector(labels.PROJECT, project.root)
            left += [c.name for c in client.containers.list(all=True, filters=ours)]
            if stack:
                left += [v.name for v in client.volumes.list(filters=labels.selector(labels.STACK, stack))]
        finally:
            client.close()
    return left
