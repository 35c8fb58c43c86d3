"""Alembic through its Python API, retried at connection time only.

One connection is opened with bounded retries on transient errors (refused, 57P03,
dropped) and handed to migrations/env.py; the migration itself is never retried, so a
bad password or an SQL error fails at once with its message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.exc import DBAPIError

from ops.errors import MigrationError, UsageError
from ops.secrets import redact
from ops.servers import failures
from ops.waiting import WaitPolicy, retry_call


@dataclass(frozen=True)
class MigrationResult:
    before: str | None
    after: str | None
    attempts: int
    direction: str  # "up", "down" or "none"


def alembic_config(project_dir: Path, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(project_dir / "migrations"))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision(project_dir: Path) -> str | None:
    return ScriptDirectory.from_config(alembic_config(project_dir)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def connect_with_retry(
    url: str, policy: WaitPolicy, alive: Callable[[], None] | None = None
) -> Iterator[tuple[Connection, int]]:
    """An open connection (and the attempts it took), retrying only transient errors."""
    engine = create_engine(url, poolclass=pool.NullPool, connect_args={"connect_timeout": 2})
    try:
        connection, attempts = retry_call(engine.connect, policy, alive)
        with connection:
            yield connection, attempts
    finally:
        engine.dispose()


def migrate(
    project_dir: Path,
    url: str,
    revision: str = "head",
    policy: WaitPolicy | None = None,
    alive: Callable[[], None] | None = None,
    log_file: Path | None = None,
) -> MigrationResult:
    """Bring the schema to `revision` (upgrade or downgrade as needed)."""
    config = alembic_config(project_dir)
    script = ScriptDirectory.from_config(config)
    try:
        with connect_with_retry(url, policy or WaitPolicy(), alive) as (connection, attempts):
            before = current_revision(connection)
            direction = _direction(script, before, revision)
            if direction != "none":
                config.attributes["connection"] = connection
                with _log_to(log_file):
                    if direction == "up":
                        command.upgrade(config, revision)
                    else:
                        command.downgrade(config, revision)
                connection.commit()
            after = current_revision(connection)
    except CommandError as exc:
        raise MigrationError(f"alembic: {exc}", "see `alembic history` for valid revisions") from None
    except DBAPIError as exc:
        message = redact(failures(exc.orig or exc))  # with several hosts: each host's error
        raise MigrationError(
            f"migration failed: {message}", f"see {log_file or 'the migration log'}"
        ) from None
    return MigrationResult(before, after, attempts, direction)


def _direction(script: ScriptDirectory, current: str | None, target: str) -> str:
    if target == "base" or target.startswith("-"):
        return "down" if current else "none"
    if target in ("head", "heads") or target.startswith("+"):
        return "none" if current == script.get_current_head() else "up"
    try:
        wanted = script.get_revision(target)
    except CommandError:
        raise UsageError(f"unknown revision {target!r}", "see `alembic history`") from None
    if wanted is None or wanted.revision == current:
        return "none"
    if current is None:
        return "up"
    below_current = {rev.revision for rev in script.iterate_revisions(current, "base")}
    return "down" if wanted.revision in below_current else "up"


@contextmanager
def _log_to(log_file: Path | None) -> Iterator[None]:
    """Send Alembic's own log lines ("Running upgrade ...") to `log_file` while migrating."""
    logger = logging.getLogger("alembic")
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()
