"""Typed failures of the harness, each with a hint and a documented exit code.

`tasks.py` turns an `OpsError` into one line on stderr and `exit_code`; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class OpsError(Exception):
    """An expected failure: a message, a hint for the user and an exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "", evidence: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.evidence = evidence  # e.g. the last lines of a log, shown above the one-line error

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        return f"{text} — {self.hint}" if self.hint else text


class UsageError(OpsError):
    """A malformed flag, setting or DSN."""

    exit_code = 2


class BackendUnavailable(OpsError):
    """The chosen backend cannot run here (no engine, missing binary, no such user)."""

    exit_code = 3


class DatabaseError(OpsError):
    """PostgreSQL did not start or did not become ready by the app's own path."""

    exit_code = 4


class MigrationError(OpsError):
    """Alembic could not bring the schema to the requested revision."""

    exit_code = 5


class ApiError(OpsError):
    """uvicorn did not start or did not answer /health with 200."""

    exit_code = 6


class PortInUse(OpsError):
    """A port the stack needs is held by another process."""

    exit_code = 7


class StackBusy(OpsError):
    """Another harness command holds the stack's lock."""

    exit_code = 8


class IngestError(OpsError):
    """A text could not be ingested; nothing was written."""

    exit_code = 9


class ArtifactsError(OpsError):
    """The artifacts directory cannot be created or written."""

    exit_code = 10


class ProcessFailed(OpsError):
    """A process declared in stack.toml did not start or did not become ready."""

    exit_code = 11


class ChecksFailed(OpsError):
    """`invoke ci`: the test suite or the smoke search failed."""

    exit_code = 1


EXIT_CODES: dict[int, str] = {
    0: "success (status/diagnose: healthy)",
    1: "unhealthy or degraded (status, diagnose), tests failed",
    UsageError.exit_code: "bad flag, setting or DATABASE_URL",
    BackendUnavailable.exit_code: "backend unavailable (no engine, missing binary or user)",
    DatabaseError.exit_code: "PostgreSQL failed to start or become ready",
    MigrationError.exit_code: "migration failed",
    ApiError.exit_code: "API failed to start or become healthy",
    PortInUse.exit_code: "a port the stack needs is in use",
    StackBusy.exit_code: "another harness command holds the stack lock",
    IngestError.exit_code: "ingest failed; nothing was written",
    ArtifactsError.exit_code: "invoke ci: the artifacts folder cannot be created or written",
    ProcessFailed.exit_code: "a process declared in stack.toml failed to start or become ready",
    130: "interrupted (Ctrl-C)",
}


def first_line(exc: BaseException) -> str:
    """The first line of what `exc` says, or its type's name when it says nothing (one-line errors)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
