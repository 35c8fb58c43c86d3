"""Reaching the Docker engine through the SDK, with a short timeout and a clear failure."""

from __future__ import annotations

import os

import docker
from docker.errors import DockerException

from ops.errors import BackendUnavailable

PING_TIMEOUT_S = 2
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def engine_address() -> str:
    """What the SDK will try: DOCKER_HOST, or the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def connect(timeout: int = 60) -> docker.DockerClient:
    """A client whose engine answered a ping, or BackendUnavailable naming what was tried."""
    try:
        client = docker.from_env(timeout=PING_TIMEOUT_S)
        client.ping()
    except DockerException as exc:
        reason = str(exc).split(": ", 1)[-1][:160]
        raise BackendUnavailable(
            f"no Docker engine answers at {engine_address()} ({reason})",
            "start dockerd (or set DOCKER_HOST), or use --backend embedded",
        ) from None
    client.api.timeout = timeout
    return client


def engine_answers() -> tuple[bool, str]:
    """For `--backend auto`: (answers, why) within PING_TIMEOUT_S."""
    try:
        client = connect()
    except BackendUnavailable as exc:
        return False, exc.message
    client.close()
    return True, f"a Docker engine answers at {engine_address()}"
