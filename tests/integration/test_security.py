"""Security properties of a stack brought up by `ops.stack.up`, and of the app's request limits.

- The API connects as `<owner>_reader`, which can read the search tables and do nothing else.
- PostgreSQL and the API listen on 127.0.0.1 only; the state file is private (0600).
- Oversized requests are refused before any route runs. (A query past the statement timeout
  is a 504 JSON: tests/integration/test_search_api.py::test_statement_timeout_is_504_json.)
"""

from __future__ import annotations

import secrets
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import errors as pg_errors
from sqlalchemy.engine import make_url

from ops import stack
from ops.docker_engine import try_connect
from ops.endpoint import Endpoint
from ops.roles import reader_name
from ops.settings import Settings
from ops.state import load_state
from tests.support.app import client_for
from tests.support.stacks import stack_settings

LOOPBACK_V4 = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it (little-endian hex)
TCP_LISTEN = "0A"


@dataclass(frozen=True)
class UpStack:
    settings: Settings
    owner: Endpoint
    reader: Endpoint
    api_pid: int


@contextmanager
def stack_up(settings: Settings) -> Iterator[UpStack]:
    """`up` a throwaway stack; `down --volumes` afterwards, whatever happened."""
    try:
        result = stack.up(settings, emit=lambda _line: None)
        state = load_state(settings.state_file)
        reader = replace(
            result.endpoint,
            user=reader_name(result.endpoint.user),
            password=state.db.reader_password,
        )
        yield UpStack(settings, result.endpoint, reader, int(state.api.pid))
    finally:
        stack.down(settings, volumes=True, emit=lambda _line: None)


@pytest.fixture(scope="module")
def up_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpStack]:
    """A throwaway embedded stack, up."""
    with stack_up(stack_settings(tmp_path_factory.mktemp("security"))) as up:
        yield up


def api_database_user(pid: int) -> str | None:
    """The role named by DATABASE_URL in the environment of process `pid`."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    urls = [item.split(b"=", 1)[1].decode() for item in environ if item.startswith(b"DATABASE_URL=")]
    assert len(urls) == 1
    return make_url(urls[0]).username


@pytest.fixture
def reader_conn(up_stack: UpStack) -> Iterator[psycopg.Connection]:
    with psycopg.connect(**up_stack.reader.connect_kwargs(timeout=5), autocommit=True) as conn:
        yield conn


# --- least privilege ---------------------------------------------------------------------


def test_reader_can_read_every_search_table(reader_conn: psycopg.Connection) -> None:
    for table in ("language", "work", "text_segment", "token", "alembic_version"):
        reader_conn.execute(f"SELECT count(*) FROM {table}").fetchone()


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO language (code, name) VALUES ('xx', 'nope')",
        "UPDATE text_segment SET text = 'x'",
        "DELETE FROM token",
        "TRUNCATE work CASCADE",
        "CREATE TABLE intruder (id int)",
        "DROP TABLE text_segment",
        "ALTER TABLE work ADD COLUMN intruder int",
        "CREATE ROLE intruder",
        "DELETE FROM alembic_version",
    ],
)
def test_reader_cannot_write_or_change_schema(reader_conn: psycopg.Connection, statement: str) -> None:
    with pytest.raises(pg_errors.InsufficientPrivilege):
        reader_conn.execute(statement)


def test_reader_is_neither_superuser_nor_owner(up_stack: UpStack, reader_conn: psycopg.Connection) -> None:
    row = reader_conn.execute(
        "SELECT current_user, rolsuper, rolcreaterole, rolcreatedb, pg_has_role(current_user, %s, 'MEMBER')"
        " FROM pg_roles WHERE rolname = current_user",
        (up_stack.owner.user,),
    ).fetchone()
    assert row == (f"{up_stack.owner.user}_reader", False, False, False, False)
    assert up_stack.reader.password != up_stack.owner.password


def test_api_process_connects_as_the_reader(up_stack: UpStack) -> None:
    assert api_database_user(up_stack.api_pid) == up_stack.reader.user == "homer_reader"


def test_second_up_keeps_the_reader_working(up_stack: UpStack) -> None:
    stack.up(up_stack.settings, emit=lambda _line: None)
    with psycopg.connect(**up_stack.reader.connect_kwargs(timeout=5)) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


@pytest.mark.docker
def test_docker_stack_api_also_uses_a_read_only_reader(tmp_path: Path) -> None:
    """With Docker the owner (a superuser there) creates the reader; same guarantees."""
    client, reason = try_connect(timeout=30)
    if client is None:
        pytest.skip(f"NO DOCKER ENGINE ANSWERS ({reason})")
    client.close()
    name = f"t{secrets.token_hex(4)}"
    with stack_up(stack_settings(tmp_path / name, backend="docker", stack=name)) as up:
        assert api_database_user(up.api_pid) == up.reader.user
        assert listening_addresses(up.owner.port) == {LOOPBACK_V4}  # docker-proxy, published on loopback
        with psycopg.connect(**up.reader.connect_kwargs(timeout=5), autocommit=True) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (
                False,
            )
            conn.execute("SELECT count(*) FROM alembic_version")
            with pytest.raises(pg_errors.InsufficientPrivilege):
                conn.execute("CREATE TABLE intruder (id int)")
            with pytest.raises(pg_errors.InsufficientPrivilege):
                conn.execute("DELETE FROM text_segment")


# --- loopback only, private state --------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net writes them) with a listening TCP socket on `port`."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:] if Path(table).exists() else []
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == TCP_LISTEN and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_postgres_and_api_listen_on_loopback_only(up_stack: UpStack) -> None:
    for port in (up_stack.owner.port, up_stack.settings.api_port):
        assert listening_addresses(port) == {LOOPBACK_V4}, f"port {port}"


ANY_V4 = "00000000"  # 0.0.0.0


def test_listening_on_every_interface_is_an_explicit_opt_in(tmp_path: Path, up_stack: UpStack) -> None:
    """db_host/api_host 0.0.0.0 (OPS_DB_HOST/OPS_API_HOST) is the only way off loopback."""
    settings = stack_settings(tmp_path / "open", db_host="0.0.0.0", api_host="0.0.0.0")
    with stack_up(settings) as up:
        assert up.owner.password != up_stack.owner.password  # a password per stack
        assert up.owner.host == "127.0.0.1"  # clients still connect over loopback
        for port in (up.owner.port, settings.api_port):
            assert listening_addresses(port) == {ANY_V4}, f"port {port}"


def test_state_file_is_private(up_stack: UpStack) -> None:
    assert stat.S_IMODE(up_stack.settings.state_file.stat().st_mode) == 0o600


# --- request limits ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_client(db_url: str) -> Iterator[TestClient]:
    with client_for(db_url) as client:
        yield client


def test_over_long_query_is_refused(app_client: TestClient) -> None:
    too_long_for_q = app_client.get("/search", params={"q": "α" * 300})
    too_long_for_url = app_client.get("/search", params={"q": "a" * 10_000})
    assert too_long_for_q.status_code == 422
    assert too_long_for_url.status_code == 414 and "detail" in too_long_for_url.json()


def test_large_body_is_413_json_on_any_route(app_client: TestClient) -> None:
    for path in ("/search?q=a", "/works", "/health", "/nowhere"):
        response = app_client.post(path, content=b"x" * (64 * 1024 + 1))
        assert response.status_code == 413, path
        assert "larger than" in response.json()["detail"]


def test_large_headers_are_431_json(app_client: TestClient) -> None:
    response = app_client.get("/works", headers={"X-Padding": "a" * 20_000})
    assert response.status_code == 431
    assert "headers" in response.json()["detail"]


def test_small_requests_pass_the_limits(app_client: TestClient) -> None:
    assert app_client.get("/works", headers={"X-Padding": "a" * 1000}).status_code == 200


def test_running_api_refuses_huge_headers(up_stack: UpStack) -> None:
    """The real uvicorn: a 100 KiB header never reaches a route (4xx, or the connection is cut)."""
    request = (
        f"GET /works HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: {'a' * 100_000}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", up_stack.settings.api_port), timeout=5) as conn:
        try:
            conn.sendall(request)
            answer = conn.recv(200)
        except (ConnectionResetError, BrokenPipeError):
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 2"), answer
