"""Loading Homer into the stack: the `seed` step of `up`, and `invoke ingest`.

The parsing and writing are the service's own (`app.ingest`); this module only points
them at the stack's database and turns their failures into the harness's errors.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import psycopg

from ops.endpoint import Endpoint
from ops.errors import DatabaseError, IngestError, UsageError, first_line
from ops.secrets import redact
from ops.settings import Settings

SEED_WORK, SEED_BOOKS = "iliad", (1,)


def seed_iliad_book_one(endpoint: Endpoint) -> str:
    """Load Iliad Book 1 into an empty database; leave a database with any text alone."""
    try:
        with psycopg.connect(**endpoint.connect_kwargs()) as conn:
            row = conn.execute("SELECT count(*) FROM text_segment").fetchone()
    except psycopg.Error as exc:
        raise _database_error(exc, endpoint) from None
    if row and row[0]:
        return f"already seeded: {row[0]} verses present"
    report = load(endpoint, SEED_WORK, SEED_BOOKS)
    return f"Iliad book 1: {report.inserted} verses in {report.seconds:.2f} s"


def load(
    endpoint: Endpoint,
    work: str,
    books: Collection[int] | None = None,
    progress: Callable[[str], None] | None = None,
):  # type: ignore[no-untyped-def]
    """Run the service's ingest against the stack; IngestError (nothing written) on failure."""
    from sqlalchemy.exc import DBAPIError

    from app import ingest as app_ingest

    try:
        return app_ingest.ingest(endpoint.url(), work, books, progress)
    except app_ingest.IngestError as exc:
        raise IngestError(str(exc), "nothing was written; fix the input and run again") from None
    except (DBAPIError, psycopg.Error) as exc:
        raise _database_error(exc, endpoint) from None


def _database_error(exc: BaseException, endpoint: Endpoint) -> DatabaseError:
    reason = first_line(getattr(exc, "orig", None) or exc)
    return DatabaseError(
        f"ingest could not use the database: {redact(reason, [endpoint.password])}",
        "nothing was written; check `invoke status`",
    )


def parse_books(value: str | None) -> range | None:
    """'3' or '1-3' as a range of books, None for all; UsageError if malformed."""
    if value is None:
        return None
    from app.ingest.tei import book_range

    try:
        return book_range(value)
    except ValueError as exc:
        raise UsageError(f"--{exc}") from None


def into_stack(
    settings: Settings, work: str, books: str | None, progress: Callable[[str], None] | None = None
) -> str:
    """`invoke ingest`: load `work`'s `books` into the stack's database; one line of counts."""
    from ops.session import writer_endpoint
    from ops.state import load_state_or_fresh

    if work not in ("iliad", "odyssey", "all"):
        raise UsageError(f"unknown work {work!r}", "choose iliad, odyssey or all")
    book_range = parse_books(books)
    endpoint = writer_endpoint(settings, load_state_or_fresh(settings.state_file))
    if endpoint is None:
        raise DatabaseError("the stack's database has never been started", "run `invoke up` first")
    report = load(endpoint, work, book_range, progress)
    rate = report.inserted / report.seconds if report.seconds else 0.0
    return (
        f"{'+'.join(report.works)}: {report.inserted} verses inserted, {report.skipped} already present, "
        f"{report.tokens} tokens, {report.seconds:.1f} s ({rate:.0f} verses/s)"
    )
