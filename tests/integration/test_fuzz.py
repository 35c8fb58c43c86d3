"""Property-based fuzzing of every operation in the app's own OpenAPI schema (schemathesis).

The app runs in-process (ASGI) on the session's real PostgreSQL with at least Iliad Book 1
ingested. Whatever the generated parameters, the API must never answer 5xx from a bug,
and every response must match the schema: a documented status code, a body of the
documented shape. A bounded, derandomized number of examples keeps it fast and repeatable;
HOMER_FUZZ_EXAMPLES=500 (say) runs a deeper search.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app.ingest import ingest
from app.main import app
from tests.support.app import reset_app_caches

MAX_EXAMPLES = int(os.environ.get("HOMER_FUZZ_EXAMPLES", "30"))  # per operation; raise it for a deeper run
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def seeded_url(db_url: str) -> str:
    """The session database with Iliad Book 1 present (idempotent if already ingested)."""
    ingest(db_url, "iliad", books=[1])
    return db_url


@pytest.fixture(autouse=True)
def app_on_database(seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the in-process app at the real database; forget its cached engine afterwards."""
    monkeypatch.setenv("DATABASE_URL", seeded_url)
    reset_app_caches()
    yield
    reset_app_caches()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,  # nothing written to .hypothesis/ in the project
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    """No server error and a schema-conformant response for every generated request."""
    case.call_and_validate(checks=CHECKS)
