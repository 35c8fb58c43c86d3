"""Fixtures for tests against a real Docker engine; skipped loudly where none answers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import docker
import pytest

from ops import stack
from ops.docker_engine import try_connect
from ops.errors import BackendUnavailable
from ops.image import ensure_offline_image, locate_busybox, offline_present, offline_tag
from ops.settings import Settings
from tests.support.stacks import stack_settings


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


def offline_image_or_skip(client: docker.DockerClient) -> str:
    """The offline image's tag, built if missing; a LOUD skip when it must be built and busybox is absent.

    An image already in the engine is used without busybox; only a build needs it.
    """
    if offline_present(client) is None:  # it would have to be built
        try:
            locate_busybox()
        except BackendUnavailable as exc:
            pytest.skip(
                f"NO BUSYBOX: the offline image {offline_tag()} is not in the engine and cannot be built "
                f"({exc.one_line()}); the tests that need it did not run"
            )
    tag, _built = ensure_offline_image(client)
    return tag


@pytest.fixture(scope="session")
def offline_image(engine: docker.DockerClient) -> str:
    """The offline image's tag (see `offline_image_or_skip`), built at most once per session."""
    return offline_image_or_skip(engine)
