"""Fixtures for tests against a real Docker engine; skipped loudly where none answers."""

from __future__ import annotations

import gc
import secrets
import warnings
from collections.abc import Iterator

import docker
import pytest
from docker.errors import DockerException

from ops import stack
from ops.settings import Settings
from tests.helpers import stack_settings


def answering_engine() -> tuple[docker.DockerClient | None, str]:
    """(client, "") when an engine answers a ping within 3 s, else (None, why)."""
    engine: docker.DockerClient | None = None
    reason = ""
    with warnings.catch_warnings():
        # A failed connect leaves the SDK's socket unclosed; let it go quietly, here and now.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            engine = docker.from_env(timeout=3)
            engine.ping()
        except DockerException as exc:
            reason = str(exc)
            if engine is not None:
                engine.close()
            engine = None
        gc.collect()
    return engine, reason


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    """The real engine; every test using it is skipped, loudly, when none answers."""
    client, reason = answering_engine()
    if client is None:
        pytest.skip(f"NO DOCKER ENGINE ANSWERS ({reason}); tests/docker did not run — start dockerd")
    client.api.timeout = 600  # an image build streams for a while
    yield client
    client.close()


@pytest.fixture
def make_stack(engine, tmp_path) -> Iterator:
    """Factory for throwaway docker stacks with unique names; all removed afterwards."""
    made: list[Settings] = []

    def make(**overrides) -> Settings:
        name = f"t{secrets.token_hex(4)}"
        settings = stack_settings(tmp_path / name, backend="docker", stack=name, **overrides)
        made.append(settings)
        return settings

    yield make
    for settings in made:
        stack.down(settings, volumes=True, emit=lambda _line: None)
