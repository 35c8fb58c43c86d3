"""Fixtures for tests against a real Docker engine; skipped loudly where none answers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import docker
import pytest

from ops import stack
from ops.engine import try_connect
from ops.settings import Settings
from tests.helpers import stack_settings


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    """The real engine; every test using it is skipped, loudly, when none answers."""
    client, reason = try_connect(timeout=600)  # an image build streams for a while
    if client is None:
        pytest.skip(f"NO DOCKER ENGINE ANSWERS ({reason}); tests/docker did not run — start dockerd")
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
