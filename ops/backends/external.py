"""An existing PostgreSQL given by DATABASE_URL: nothing is started or stopped.

Every libpq parameter of the URL (TLS modes and files, `target_session_attrs`, `options`, ...)
is kept in the endpoint, so that it reaches every connection the harness and the app make.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from ops.backends.base import DatabaseBackend, ServerFacts, Started
from ops.dsn import check_files
from ops.endpoint import Endpoint
from ops.errors import UsageError
from ops.settings import Settings
from ops.state import DbRecord


class ExternalBackend(DatabaseBackend):
    name = "external"
    owns_server = False

    def __init__(self, settings: Settings, record: DbRecord | None = None) -> None:
        if not settings.database_url:
            raise UsageError(
                "the external backend needs DATABASE_URL",
                "export DATABASE_URL=postgresql://user:pw@host:5432/db",
            )
        self.settings = settings
        self.record = (record or DbRecord()).model_copy(deep=True)
        self.url = make_url(settings.database_url)

    @property
    def log_path(self) -> Path | None:
        return None

    def planned_endpoint(self) -> Endpoint:
        """The server is already there: its endpoint is the URL's (files checked first)."""
        endpoint = Endpoint.from_url(self.settings.database_url or "")
        check_files(dict(endpoint.params))
        return endpoint

    def start(self) -> Started:
        endpoint = self.planned_endpoint()
        params = dict(endpoint.params)
        self.record = DbRecord(
            backend=self.name,
            host=endpoint.host,
            port=endpoint.port,
            user=endpoint.user,
            database=endpoint.database,
            password=endpoint.password,
            params=params,
            more_hosts=list(endpoint.more_hosts),
        )
        tls = f", sslmode={params['sslmode']}" if "sslmode" in params else ""
        servers = "servers" if endpoint.more_hosts else "server"
        detail = f"external {servers} {endpoint.where}{tls}"
        return Started(endpoint, reused=True, detail=detail, record=self.record)

    def assert_alive(self) -> None:
        """Nothing local to watch: readiness alone tells."""

    def is_running(self) -> bool:
        return True

    def stop(self) -> bool:
        return False

    def destroy(self) -> bool:
        return False

    def describe(self) -> ServerFacts:
        endpoint = Endpoint.from_url(self.settings.database_url or "")
        return ServerFacts(
            self.name, running=None, port=endpoint.port, hosts=endpoint.hosts, where=endpoint.where
        )
