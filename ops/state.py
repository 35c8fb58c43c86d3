"""The stack's resolved truth: one JSON file, mode 0600, written atomically, as typed records.

It records what was actually bound or started (backend, pid or container, host and port, the
stack's passwords, each process and what its inputs' fingerprint was when it started) and the
last command's step ledger. Everything else reads endpoints from here, never from a guess.

Format version 2. A version-1 file (the same keys, fewer of them) is read and upgraded; any
other version, or a file that does not parse, is a `StateProblem`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ops.errors import StackBusy
from ops.platform import LockBusy, exclusive_lock
from ops.signals import sigint_held

STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)


class Record(BaseModel):
    """A part of the state file: typed, and keeping unknown keys a newer release may have written."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)


class DbRecord(Record):
    """Where the stack's PostgreSQL is and how to reach it (the owner's credentials)."""

    backend: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    database: str | None = None
    password: str | None = None
    reader_password: str | None = None  # the API's read-only role (embedded and docker)
    params: dict[str, str] = Field(default_factory=dict)  # libpq parameters of an external DSN
    more_hosts: list[tuple[str, int]] = Field(default_factory=list)  # a multi-host DSN's other hosts
    pid: int | None = None  # embedded: the postmaster
    data_dir: str | None = None
    container_id: str | None = None  # docker
    container_name: str | None = None
    volume: str | None = None


class ProcessRecord(Record):
    """A process the harness started: the API, or a declared process."""

    pid: int | None = None
    port: int | None = None
    url: str | None = None
    log: str | None = None
    fingerprint: dict[str, Any] | None = None  # of its inputs when it started (ops.fingerprint)
    started_at: str | None = None
    server: str | None = None  # the API's: "warm" under ops.warm_server (invoke dev), else uvicorn
    database: str | None = None  # the API's: where its DATABASE_URL points (host:port/database)
    workers: int | None = None  # the API's: how many processes serve (None: one, as before workers)
    restart: str | None = None  # the warm server's restart policy for its workers (no under `up`)


class StepRecord(Record):
    name: str
    status: str
    attempts: int = 1
    started_at: str | None = None
    duration_s: float = 0.0
    detail: str = ""
    evidence: str = ""
    offset_s: float = 0.0  # seconds after the command began


class StackState(Record):
    """Everything `.ops/state.json` holds."""

    version: int = STATE_VERSION
    stack: str | None = None
    last_command: str | None = None
    updated_at: str | None = None
    db: DbRecord = Field(default_factory=DbRecord)
    api: ProcessRecord = Field(default_factory=ProcessRecord)
    processes: dict[str, ProcessRecord] = Field(default_factory=dict)
    fingerprints: dict[str, Any] = Field(default_factory=dict)  # e.g. the migrations' head, remembered
    steps: list[StepRecord] = Field(default_factory=list)

    @property
    def secrets(self) -> list[str]:
        """The stack's secrets, to mask in any output."""
        from ops.secrets import stack_passwords

        return stack_passwords(self.db.model_dump())


class StateProblem(Exception):
    """The state file exists but cannot be used (corrupt, half-written, other version)."""


def load_state(path: Path) -> StackState:
    """The saved state (upgraded to the current version), or a fresh one when there is none.

    Raises StateProblem when the file is unusable.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return StackState()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StateProblem(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise StateProblem(f"{path} does not hold a JSON object")
    if data.get("version") not in READABLE_VERSIONS:
        raise StateProblem(f"{path} has state version {data.get('version')!r}, not {STATE_VERSION}")
    try:
        return StackState.model_validate({**data, "version": STATE_VERSION})
    except ValidationError as exc:
        where = ".".join(str(part) for part in exc.errors()[0]["loc"])
        raise StateProblem(f"{path} has an unusable {where!r}") from None


def load_state_or_fresh(path: Path, warn: Any = None) -> StackState:
    """Like load_state, but an unusable file is set aside as <name>.bad and a fresh state returned."""
    try:
        return load_state(path)
    except StateProblem as problem:
        path.replace(path.with_suffix(".json.bad"))
        if warn:
            warn(f"warning: {problem}; set aside as {path.name}.bad, starting from a fresh state")
        return StackState()


def save_state(path: Path, state: StackState) -> None:
    """Write `state` atomically (own temp file, fsync, rename) with mode 0600.

    A Ctrl-C arriving meanwhile is held until the file is in place: the write is never half
    done, and no lock inside the standard library (tempfile's, once) is left held by it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(state.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(f".state-{os.getpid()}-{secrets.token_hex(6)}.tmp")
    with sigint_held():
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def stack_lock(state_dir: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the stack's exclusive lock; another holder makes this fail clearly (StackBusy).

    An OS lock on `<state_dir>/lock` (`ops.platform.exclusive_lock`): released by the OS when
    the holder dies, so a crashed command never leaves it held.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    lock_path = state_dir / "lock"
    try:
        with exclusive_lock(lock_path, wait_seconds):
            yield
    except LockBusy:
        raise StackBusy(
            f"another harness command is running on this stack ({lock_path})",
            "wait for it to finish, or use another --stack",
        ) from None
