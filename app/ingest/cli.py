"""Load Homer's Perseus TEI editions into text_segment and token, idempotently, in one transaction.

The command line of app.ingest: ``python -m app.ingest --work iliad --books 1-3``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from app.catalog import WORKS
from app.ingest.tei import DATA_DIR, IngestError, book_range
from app.ingest.writer import ingest


def parse_books(value: str) -> range:
    """ "3" or "1-3" as a range of book numbers (argparse type)."""
    try:
        return book_range(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--work", choices=[*WORKS, "all"], default="iliad")
    parser.add_argument("--books", type=parse_books, help="a book or a range, e.g. 1 or 1-3 (default: all)")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL"
    )
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("no database: pass --database-url or set DATABASE_URL")
    progress = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    try:
        report = ingest(args.database_url, args.work, args.books, progress, args.data_dir)
    except IngestError as exc:
        print(f"ingest failed: {exc}", file=sys.stderr)
        return 1
    rate = report.inserted / report.seconds if report.seconds else 0.0
    print(
        f"{'+'.join(report.works)}: {report.inserted} verses inserted, {report.skipped} already present,"
        f" {report.tokens} tokens, {report.seconds:.1f} s ({rate:.0f} verses/s)"
    )
    return 0
