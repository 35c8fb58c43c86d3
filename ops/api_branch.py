"""The API's steps as a branch beside the database's: uvicorn starts and imports the app while
PostgreSQL initialises and the migrations run, and `api-health` waits for them to be done.

`api-start` runs as soon as the database's address is known (before it is ready: the app's
pool connects lazily), `api-health` once the database branch has finished. A failure on either
side ends the other: the database branch calls `check()` between its steps, and `abort()`
when it fails or is interrupted; a uvicorn that dies while it waits ends the branch at once.
Whatever this branch started is stopped again when the command fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ops import api
from ops.backends.base import DatabaseBackend
from ops.endpoint import Endpoint
from ops.errors import ApiError
from ops.fingerprint import Fingerprint
from ops.procs import tail
from ops.roles import reader_name
from ops.secrets import new_password
from ops.state import ProcessRecord

if TYPE_CHECKING:
    from ops.session import Session

POLL_S = 0.05


class ApiBranch:
    def __init__(
        self,
        run: Session,
        backend: DatabaseBackend,
        keep: bool,
        fingerprint: Callable[[], Fingerprint],
        sweep: Callable[[], None],
        now: Callable[[], str],
        declared_env: Callable[[Endpoint, str], dict[str, str]] = lambda owner, url: {},
    ) -> None:
        self.run, self.backend, self.keep = run, backend, keep
        # Chosen once, before either branch runs: the backend provisions the role with it (embedded),
        # the database branch grants to it (ensure_reader), and the API connects with it.
        self.reader_password = backend.record.reader_password or new_password()
        backend.record.reader_password = self.reader_password
        self._fingerprint, self._sweep, self._now = fingerprint, sweep, now
        self._declared_env = declared_env  # the stack file's `env` for the API, for its addresses
        self.url = api.recorded_url(run.settings, run.state)
        self.started: int | None = None  # a pid this branch started
        self._owner: Endpoint | None = None
        self._address = threading.Event()
        self._db_done = threading.Event()
        self._aborted = threading.Event()
        self.spawned = threading.Event()  # api-start is over: the CPU-heavy work may begin
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="api-branch", daemon=True)

    # --- called by the database branch --------------------------------------------------------

    def launch(self, owner: Endpoint | None) -> None:
        """Start the branch; `owner` is the database's endpoint if already known."""
        if owner is not None:
            self.address_known(owner)
        self._thread.start()

    def address_known(self, owner: Endpoint) -> None:
        if self._owner is None:
            self._owner = owner
        self._address.set()

    def database_done(self) -> None:
        self._db_done.set()

    def check(self) -> None:
        """Raise this branch's failure in the caller, so the database branch stops too."""
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """The database branch failed or was interrupted: end this one, stopping what it started."""
        self._aborted.set()
        self._address.set()
        self._db_done.set()
        if self._thread.ident is not None:  # launched
            self._thread.join()

    def join(self) -> str:
        """Wait for the branch; its failure is raised here. Returns the API's URL."""
        if self._thread.ident is not None:
            self._thread.join()
        self.check()
        return self.url

    def moved(self, owner: Endpoint) -> bool:
        """True if the API was started for another address than the database ended up on."""
        return self.started is not None and self._owner is not None and self._owner.port != owner.port

    # --- the branch ----------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._steps()
        except BaseException as exc:  # handed to the database branch by check() and join()
            self._error = exc
        finally:
            self.spawned.set()
            if (self._error is not None or self._aborted.is_set()) and self.started:
                api.stop(self.started)
                self.run.state.api.pid = None
                self.started = None

    def _steps(self) -> None:
        run, settings, ledger = self.run, self.run.settings, self.run.ledger
        self._address.wait()
        if self._aborted.is_set():
            return
        with ledger.step("api-start") as step:
            pid = run.state.api.pid
            if self.keep and api.is_ours(pid, settings):  # as planned; api-health checks it
                step.skip(f"kept, pid {pid}")
            else:
                step.detail = self._start()
        self.spawned.set()
        try:
            self._wait_for_database()  # outside the step: its start marks the database branch's end
        except ApiError as died:
            with ledger.step("api-health"):
                raise died from None
        with ledger.step("api-health") as step:
            if self._aborted.is_set():
                step.skip("not run: the database's steps did not finish")
                return
            restarted = ""
            if self.started is None and api.probe(self.url).status != 200:
                # kept, but what the database's branch did (a migration, a new port) left it unhealthy
                started = self._start(reload=False)
                restarted = f"; restarted ({started}) after the database's steps left it unhealthy"
            elif self.started is None and (short := self._short_of_workers()):
                restarted = f"; {self._start()} ({short} since the plan was made)"  # a worker died since
            assert run.state.api.pid is not None, "api-start either found our healthy API or started one"
            health, step.attempts = api.wait_healthy(
                settings, self.url, run.state.api, run.policy(settings.api_health_timeout)
            )
            step.detail = f"GET /health -> {health.status}{restarted}"

    def _short_of_workers(self) -> str | None:
        """`1 of 2 workers running` when a kept API of several workers lacks some, else None."""
        record = self.run.state.api
        if api.expected_workers(record) < 2:
            return None
        return api.workers(self.run.settings, record).shortfall()

    def _reloadable(self) -> Fingerprint | None:
        """The API's fingerprint now, if a warm server of ours can reload to it: on the same database,
        its declaration and settings unchanged (only code changed), since its workers inherit its
        environment, DATABASE_URL included. None: start it anew."""
        record, settings = self.run.state.api, self.run.settings
        if record.server != "warm" or not api.is_ours(record.pid, settings):
            return None
        if self._owner is None or record.database != database_address(self._owner):
            return None
        before, now = Fingerprint.from_record(record.fingerprint), self._fingerprint()
        return now if before is not None and before.declared == now.declared else None

    def _reload(self, now: Fingerprint) -> str:
        run, settings = self.run, self.run.settings
        pid = run.state.api.pid
        assert pid is not None
        seconds = api.reload(settings, pid, settings.api_health_timeout)
        run.state.api.fingerprint = now.as_record()
        run.state.api.started_at = self._now()
        return f"warm server pid {pid} reloaded the code in {seconds:.2f} s"

    def _start(self, reload: bool = True) -> str:
        run, settings = self.run, self.run.settings
        assert self._owner is not None
        now = self._reloadable() if reload else None
        if now is not None:
            return self._reload(now)
        if api.is_ours(run.state.api.pid, settings):
            api.stop(run.state.api.pid)
        self._sweep()
        port = api.choose_port(settings, run.state.api.port)
        self.url = settings.api_url_on(port)
        server = api.server_for(settings, run.warm_api)
        extra_env = self._declared_env(self._owner, self.url)
        self.started = pid = api.start(
            settings, self.api_endpoint(self._owner).url(), port, server, extra_env
        )
        run.state.api = ProcessRecord(
            server="warm" if server.warm else None,
            workers=server.workers,
            restart=server.restart,
            database=database_address(self._owner),
            pid=pid,
            port=port,
            url=self.url,
            log=str(api.log_path(settings)),
            started_at=self._now(),
            fingerprint=self._fingerprint().as_record(),
        )
        what = f"uvicorn pid {pid}" if server.workers < 2 else f"{server.workers} workers under pid {pid}"
        if port != settings.api_port:
            run.emit(f"api: port {settings.api_port} is taken; using {port}, recorded in the state file")
            return f"{what} on {self.url} (port {settings.api_port} is taken)"
        return f"{what} on {self.url}"

    def api_endpoint(self, owner: Endpoint) -> Endpoint:
        """Where the API connects: the read-only role of a server the harness runs (its grants are
        refreshed by the database branch), or an external server's DSN as it was given."""
        if not self.backend.owns_server:
            return owner
        return replace(owner, user=reader_name(owner.user), password=self.reader_password)

    def _wait_for_database(self) -> None:
        """Until the database branch is done; a uvicorn that dies meanwhile ends the wait at once."""
        settings = self.run.settings
        while not self._db_done.wait(POLL_S):
            pid = self.started
            if pid is None:
                continue
            code = api.exit_code(pid)
            if code is not None:
                raise ApiError(
                    f"uvicorn exited with code {code} before /health answered (while the database started)",
                    f"see {api.log_path(settings)}",
                    evidence=tail(api.log_path(settings), settings.log_tail_lines),
                )


def database_address(endpoint: Endpoint) -> str:
    """Where the API's database is: every host of a multi-host DSN, so that a new one restarts it."""
    return f"{endpoint.where}/{endpoint.database}"
