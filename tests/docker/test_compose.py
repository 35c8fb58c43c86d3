"""docker-compose.yml against a real engine (pytest-docker), with the offline image.

Compose is `docker compose` (v2, the CLI plugin) where it answers, else `docker-compose` (v1);
with neither, the compose tests are skipped loudly before pytest-docker runs anything.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence

import httpx
import pytest

from ops import stack
from ops.migrate import head_revision
from tests.support.db import query
from tests.support.paths import PROJECT_DIR
from tests.support.stacks import stack_settings

pytestmark = pytest.mark.docker
PASSWORD = secrets.token_hex(16)
COMPOSE_V2 = "docker compose"
COMPOSE_V1 = "docker-compose"
NO_COMPOSE = (
    "NO DOCKER COMPOSE (neither `docker compose` v2 nor `docker-compose` v1 answers `version`); "
    "the compose tests did not run — install the compose plugin or `apt-get install docker-compose`"
)
PROBE_TIMEOUT_S = 30


def exits_zero(argv: Sequence[str]) -> bool:
    """Whether `argv` runs and exits 0 (a missing binary or a hang is False)."""
    try:
        done = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=PROBE_TIMEOUT_S, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def compose_command(probe: Callable[[Sequence[str]], bool] = exits_zero) -> str | None:
    """The compose command prefix: `docker compose` (v2) if it answers, else `docker-compose` (v1).

    None when neither answers. `probe` runs an argv and tells whether it exited 0.
    """
    for command in (COMPOSE_V2, COMPOSE_V1):
        if probe([*shlex.split(command), "version"]):
            return command
    return None


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    """pytest-docker's command prefix; skips (not errors) here, before pytest-docker runs it."""
    command = compose_command()
    if command is None:
        pytest.skip(NO_COMPOSE)
    return command


@pytest.fixture(scope="session")
def compose_env(docker_compose_command: str, offline_image: str) -> Iterator[dict[str, str]]:
    wanted = {"HOMER_PG_IMAGE": offline_image, "POSTGRES_PASSWORD": PASSWORD}
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    yield wanted
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(PROJECT_DIR / "docker-compose.yml")


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return f"homerops{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def docker_setup(compose_env) -> list[str]:
    return ["up -d db"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down -v"]


def health_status(project: str) -> str:
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if not ids:
        return "missing"
    inspect = subprocess.run(["docker", "inspect", ids[0]], capture_output=True, text=True, check=True)
    return json.loads(inspect.stdout)[0]["State"].get("Health", {}).get("Status", "none")


def test_compose_command_prefers_v2_then_v1_then_none():
    def only(*answering: str) -> Callable[[Sequence[str]], bool]:
        return lambda argv: " ".join(argv) in answering

    assert compose_command(only("docker compose version", "docker-compose version")) == "docker compose"
    assert compose_command(only("docker compose version")) == "docker compose"
    assert compose_command(only("docker-compose version")) == "docker-compose"
    assert compose_command(only()) is None


def test_a_missing_or_failing_binary_does_not_answer():
    assert exits_zero([sys.executable, "-c", "pass"])
    assert not exits_zero([sys.executable, "-c", "raise SystemExit(1)"])
    assert not exits_zero([f"no-such-binary-{secrets.token_hex(4)}", "version"])


def test_compose_db_becomes_healthy_on_loopback_and_serves_the_app(
    docker_services, docker_compose_command, docker_compose_project_name, tmp_path
):
    docker_services.wait_until_responsive(
        check=lambda: health_status(docker_compose_project_name) == "healthy", timeout=90, pause=0.2
    )
    published = subprocess.run(
        [*shlex.split(docker_compose_command), "-f", str(PROJECT_DIR / "docker-compose.yml"),
         "-p", docker_compose_project_name, "port", "db", "5432"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    host, port = published.rsplit(":", 1)
    assert host == "127.0.0.1"  # loopback only
    assert int(port) == docker_services.port_for("db", 5432)

    url = f"postgresql://homer:{PASSWORD}@127.0.0.1:{port}/homer"
    settings = stack_settings(tmp_path / "ext", backend="external", database_url=url)
    try:
        result = stack.up(settings, emit=lambda _line: None)
        assert result.endpoint.port == int(port)
        response = httpx.get(f"{settings.api_url}/health", timeout=5, trust_env=False)
        assert response.status_code == 200
        assert query(result.endpoint.url(), "SELECT version_num FROM alembic_version") == [
            (head_revision(PROJECT_DIR),)
        ]
    finally:
        stack.down(settings, emit=lambda _line: None)
