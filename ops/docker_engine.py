"""Reaching the Docker engine through the SDK, with a short timeout and a clear failure."""

from __future__ import annotations

import gc
import os
import warnings

import docker
from docker.errors import DockerException

from ops.errors import BackendUnavailable

PING_TIMEOUT_S = 2
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def engine_address() -> str:
    """What the SDK will try: DOCKER_HOST, or the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def try_connect(timeout: int = 60) -> tuple[docker.DockerClient | None, str]:
    """(client, "") when an engine answers a ping within PING_TIMEOUT_S, else (None, why)."""
    client: docker.DockerClient | None = None
    reason = ""
    with warnings.catch_warnings():
        # A failed connect leaves the SDK's socket unclosed: let it go quietly, here and now
        # (collected once the exception, which holds it, is gone).
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=PING_TIMEOUT_S)
            client.ping()
        except DockerException as exc:
            reason = str(exc).split(": ", 1)[-1][:160]
            if client is not None:
                client.close()
            client = None
        if client is None:
            gc.collect()
            return None, reason
    client.api.timeout = timeout
    return client, ""


def connect(timeout: int = 60) -> docker.DockerClient:
    """A client whose engine answered a ping, or BackendUnavailable naming what was tried."""
    client, reason = try_connect(timeout)
    if client is None:
        raise BackendUnavailable(
            f"no Docker engine answers at {engine_address()} ({reason})",
            "start dockerd (or set DOCKER_HOST), or use --backend embedded",
        )
    return client


def engine_answers() -> tuple[bool, str]:
    """For `--backend auto`: (answers, why) within PING_TIMEOUT_S."""
    client, reason = try_connect()
    if client is None:
        return False, f"no Docker engine answers at {engine_address()} ({reason})"
    client.close()
    return True, f"a Docker engine answers at {engine_address()}"
