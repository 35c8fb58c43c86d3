"""docker-compose.yml against a real engine (pytest-docker), with the offline image."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from ops import stack
from ops.image import ensure_offline_image
from ops.migrate import head_revision
from tests.helpers import PROJECT_DIR, query, stack_settings

pytestmark = pytest.mark.docker
PASSWORD = secrets.token_hex(16)


@pytest.fixture(scope="session")
def compose_env(engine) -> Iterator[dict[str, str]]:
    tag, _ = ensure_offline_image(engine)
    wanted = {"HOMER_PG_IMAGE": tag, "POSTGRES_PASSWORD": PASSWORD}
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    yield wanted
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    return "docker-compose"


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


def test_compose_db_becomes_healthy_on_loopback_and_serves_the_app(
    docker_services, docker_compose_project_name, tmp_path
):
    docker_services.wait_until_responsive(
        check=lambda: health_status(docker_compose_project_name) == "healthy", timeout=90, pause=0.2
    )
    published = subprocess.run(
        ["docker-compose", "-f", str(PROJECT_DIR / "docker-compose.yml"), "-p", docker_compose_project_name,
         "port", "db", "5432"],
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
