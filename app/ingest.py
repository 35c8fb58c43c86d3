"""Load Homer's Perseus TEI editions into text_segment and token, idempotently, in one transaction.

`parse_work(path)` is pure (no database): it returns the verses of a file as the edition
numbers them. `ingest(url_or_engine, work, books)` parses first, then writes everything in
one transaction: COPY into temporary staging tables, then INSERT ... SELECT ... ON
CONFLICT DO NOTHING, so a second run inserts nothing and a failure leaves the database
as it was. Run it as ``python -m app.ingest --work iliad --books 1-3``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector
from sqlalchemy import Connection, Engine, create_engine, pool, text
from sqlalchemy.engine import make_url

from app.catalog import LANGUAGE_CODE, LANGUAGE_NAME, WORKS, WorkSpec
from app.embedding import EMBEDDING_DIM, Embedder, default_embedder
from app.folding import fold, tokenize

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TEI = "{http://www.tei-c.org/ns/1.0}"
INGEST_LOCK_KEY = 0x484F4D4552  # pg_advisory_xact_lock key: one ingest at a time ("HOMER")
REBUILD_MIN_ROWS = 2000  # below this, new rows go into the HNSW index one by one


class IngestError(Exception):
    """The input cannot be ingested (missing, malformed or unexpected file); nothing was written."""


@dataclass(frozen=True)
class Verse:
    book: int
    line: int
    text: str
    deleted: bool

    @property
    def ref(self) -> str:
        return f"{self.book}.{self.line}"


@dataclass(frozen=True)
class ParsedWork:
    path: Path
    urn: str | None  # the edition's own URN, from <div type="edition" n=..>
    verses: list[Verse]

    def books(self) -> list[int]:
        return sorted({verse.book for verse in self.verses})


@dataclass(frozen=True)
class IngestReport:
    works: tuple[str, ...]
    parsed: int  # verses read from the files (after the books filter)
    inserted: int  # new text_segment rows
    skipped: int  # verses already present
    tokens: int  # new token rows
    seconds: float


Progress = Callable[[str], None]


# --- parsing ------------------------------------------------------------------------------


def parse_work(path: Path | str, books: Collection[int] | None = None) -> ParsedWork:
    """The verses of one Perseus TEI file, in document order; IngestError if it is unusable."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        raise IngestError(f"{path}: malformed XML at line {line}, column {column}: {exc.msg}") from None
    except OSError as exc:
        raise IngestError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    body = root.find(f"{TEI}text/{TEI}body")
    if body is None:
        raise IngestError(f"{path}: not a TEI text: no <text><body> in the {TEI}TEI namespace")
    edition = body.find(f"{TEI}div[@type='edition']")
    verses: list[Verse] = []
    _collect(body, path, None, False, verses)
    if not verses:
        raise IngestError(f"{path}: no verses (<l n=..> inside a book <div>) found")
    _check_unique(path, verses)
    if books is not None:
        wanted = set(books)
        missing = sorted(wanted - {verse.book for verse in verses})
        if missing:
            raise IngestError(f"{path}: no book(s) {', '.join(map(str, missing))} in this edition")
        verses = [verse for verse in verses if verse.book in wanted]
    return ParsedWork(path, edition.get("n") if edition is not None else None, verses)


def _collect(element: ET.Element, path: Path, book: int | None, in_del: bool, out: list[Verse]) -> None:
    """Walk the body: book divs set the book, <l> elements become verses."""
    for child in element:
        tag = child.tag
        if (
            tag == f"{TEI}div"
            and child.get("type") == "textpart"
            and child.get("subtype", "").lower() == "book"
        ):
            _collect(child, path, _number(path, child, "book"), in_del, out)
        elif tag == f"{TEI}l":
            if book is None:
                raise IngestError(f"{path}: verse n={child.get('n')!r} outside any book <div>")
            full, kept = _verse_text(child)
            deleted = in_del or (bool(full) and not kept)
            out.append(Verse(book, _number(path, child, f"line in book {book}"), full, deleted))
        elif tag != f"{TEI}note":
            _collect(child, path, book, in_del or tag == f"{TEI}del", out)


def _verse_text(verse: ET.Element) -> tuple[str, str]:
    """(all text, text outside <del>) of a verse: NFC, white space collapsed, notes left out."""
    full: list[str] = []
    kept: list[str] = []

    def walk(element: ET.Element, deleted: bool) -> None:
        if element.text:
            full.append(element.text)
            if not deleted:
                kept.append(element.text)
        for child in element:
            if child.tag != f"{TEI}note":
                walk(child, deleted or child.tag == f"{TEI}del")
            if child.tail:  # the tail of a <milestone/> is verse text
                full.append(child.tail)
                if not deleted:
                    kept.append(child.tail)

    walk(verse, False)
    return _clean("".join(full)), _clean("".join(kept))


def _clean(raw: str) -> str:
    return unicodedata.normalize("NFC", " ".join(raw.split()))


def _number(path: Path, element: ET.Element, what: str) -> int:
    value = element.get("n", "")
    try:
        return int(value)
    except ValueError:
        raise IngestError(f"{path}: {what} number n={value!r} is not an integer") from None


def _check_unique(path: Path, verses: Sequence[Verse]) -> None:
    seen: set[tuple[int, int]] = set()
    for verse in verses:
        key = (verse.book, verse.line)
        if key in seen:
            raise IngestError(f"{path}: verse {verse.ref} appears twice")
        seen.add(key)


# --- writing ------------------------------------------------------------------------------


def ingest(
    url_or_engine: str | Engine,
    work: str = "iliad",
    books: Collection[int] | None = None,
    progress: Progress | None = None,
    data_dir: Path | str = DATA_DIR,
    embedder: Embedder | None = None,
) -> IngestReport:
    """Parse `work` ("iliad", "odyssey" or "all") from `data_dir` and store the verses not yet stored."""
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    specs = _specs(work)
    parsed: list[tuple[WorkSpec, ParsedWork]] = []
    for spec in specs:  # everything is parsed before anything is written
        result = parse_work(Path(data_dir) / spec.filename, books)
        if result.urn is not None and result.urn != spec.urn:
            raise IngestError(f"{result.path}: edition URN is {result.urn}, expected {spec.urn}")
        say(f"{spec.slug}: parsed {len(result.verses)} verses in {len(result.books())} books")
        parsed.append((spec, result))
    embedder = embedder or default_embedder()
    if embedder.dim != EMBEDDING_DIM:
        raise ValueError(f"embedder gives {embedder.dim} dimensions, text_segment.emb has {EMBEDDING_DIM}")
    inserted = tokens = 0
    with _engine(url_or_engine) as engine, engine.begin() as conn:
        _prepare(conn)
        plans = [_plan(conn, spec, result.verses, say) for spec, result in parsed]
        new = sum(len(verses) for _, _, verses in plans)
        with search_indexes_paused(conn, _worth_rebuilding(conn, new), say):
            for spec, work_id, verses in plans:
                new_segments, new_tokens = _write_work(conn, spec, work_id, verses, embedder, say)
                inserted += new_segments
                tokens += new_tokens
        if inserted:  # fresh statistics, so that the planner picks the trigram and HNSW indexes at once
            conn.execute(text("ANALYZE text_segment, token"))
        say("committing")
    total = sum(len(result.verses) for _, result in parsed)
    return IngestReport(
        works=tuple(spec.slug for spec in specs),
        parsed=total,
        inserted=inserted,
        skipped=total - inserted,
        tokens=tokens,
        seconds=time.perf_counter() - started,
    )


def _specs(work: str) -> list[WorkSpec]:
    if work == "all":
        return list(WORKS.values())
    if work not in WORKS:
        raise IngestError(f"unknown work {work!r}: choose one of {', '.join([*WORKS, 'all'])}")
    return [WORKS[work]]


@contextmanager
def _engine(url_or_engine: str | Engine) -> Iterator[Engine]:
    if isinstance(url_or_engine, Engine):
        yield url_or_engine
        return
    url = make_url(url_or_engine).set(drivername="postgresql+psycopg")
    named = {} if "application_name" in url.query else {"application_name": "homer-ingest"}
    engine = create_engine(url, poolclass=pool.NullPool, connect_args=named)
    try:
        yield engine
    finally:
        engine.dispose()


def _prepare(conn: Connection) -> None:
    """Session settings and staging tables for this transaction only."""
    conn.execute(text("SET LOCAL statement_timeout = '10min'"))
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": INGEST_LOCK_KEY})
    conn.execute(
        text(
            "CREATE TEMP TABLE stage_segment (book int, line int, text text, text_fold text,"
            " emb vector(256), deleted boolean) ON COMMIT DROP"
        )
    )
    conn.execute(
        text(
            "CREATE TEMP TABLE stage_token (book int, line int, position int, surface text, fold text)"
            " ON COMMIT DROP"
        )
    )
    register_vector(_driver(conn))


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under SQLAlchemy's, for COPY and the vector type."""
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"ingest needs the psycopg driver, not {type(driver).__name__}")
    return driver


def _plan(
    conn: Connection, spec: WorkSpec, verses: Sequence[Verse], say: Progress
) -> tuple[WorkSpec, int, list[Verse]]:
    """The work's row id (created if need be) and those of `verses` not stored yet."""
    work_id = _ensure_work(conn, spec)
    existing = {tuple(row) for row in conn.execute(
        text("SELECT book, line FROM text_segment WHERE work_id = :work_id"), {"work_id": work_id}
    )}  # fmt: skip
    new = [verse for verse in verses if (verse.book, verse.line) not in existing]
    say(f"{spec.slug}: {len(new)} new verses, {len(verses) - len(new)} already stored")
    return spec, work_id, new


def _worth_rebuilding(conn: Connection, new: int) -> bool:
    """Whether building the search indexes afresh beats inserting `new` rows into them one by one.

    Measured here: an incremental HNSW insert costs about 1.2 ms a row, a fresh build about
    0.15 ms a row of the whole table, so a rebuild pays when the new rows are over ~1/8.
    """
    if new < REBUILD_MIN_ROWS:
        return False
    stored = conn.execute(text("SELECT count(*) FROM text_segment")).scalar_one()
    return new * 8 >= stored + new


@contextmanager
def search_indexes_paused(conn: Connection, rebuild: bool, say: Progress) -> Iterator[None]:
    """Drop the search indexes (HNSW, trigram, token fold) for a bulk load, then build them again.

    Only indexes that back no constraint are touched, and their definitions are read from
    the catalogue, so what migrations created is what comes back. Dropping takes an
    exclusive lock on text_segment until commit: searches wait for the few seconds of a
    bulk load; small loads (no rebuild) do not block readers.
    """
    if not rebuild:
        yield
        return
    definitions = conn.execute(
        text(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)"
            " FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE t.relname IN ('text_segment', 'token')"
            "   AND t.relnamespace = current_schema()::regnamespace"
            "   AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
            " ORDER BY 1"
        )
    ).all()
    for name, _definition in definitions:
        conn.execute(text(f"DROP INDEX {name}"))  # a regclass name, quoted by PostgreSQL as needed
    yield
    conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
    started = time.perf_counter()
    for _name, definition in definitions:
        conn.execute(text(definition))
    say(f"rebuilt {len(definitions)} search indexes in {time.perf_counter() - started:.1f} s")


def _write_work(
    conn: Connection, spec: WorkSpec, work_id: int, new: Sequence[Verse], embedder: Embedder, say: Progress
) -> tuple[int, int]:
    """Stage and insert verses of one work: (segments, tokens) added."""
    if not new:
        return 0, 0
    vectors = embedder.embed([verse.text for verse in new])
    say(f"{spec.slug}: embedded {len(new)} verses")
    conn.execute(text("TRUNCATE stage_segment, stage_token"))
    with _driver(conn).cursor() as cursor:
        with cursor.copy("COPY stage_segment FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "int4", "text", "text", "vector", "bool"])
            for verse, vector in zip(new, vectors, strict=True):
                emb = Vector(vector) if any(vector) else None  # no letters: no vector (NULL)
                copy.write_row((verse.book, verse.line, verse.text, fold(verse.text), emb, verse.deleted))
        with cursor.copy("COPY stage_token FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "int4", "int4", "text", "text"])
            for verse in new:
                for token in tokenize(verse.text):
                    copy.write_row((verse.book, verse.line, token.position, token.surface, token.fold))
    segments = conn.execute(
        text(
            "INSERT INTO text_segment (work_id, book, line, ref, urn, text, text_fold, emb, deleted)"
            " SELECT :work_id, book, line, book || '.' || line, :urn || ':' || book || '.' || line,"
            "        text, text_fold, emb, deleted"
            " FROM stage_segment ORDER BY book, line"
            " ON CONFLICT DO NOTHING"
        ),
        {"work_id": work_id, "urn": spec.urn},
    ).rowcount
    tokens = conn.execute(
        text(
            "INSERT INTO token (segment_id, position, surface, fold)"
            " SELECT s.id, t.position, t.surface, t.fold"
            " FROM stage_token t JOIN text_segment s"
            "   ON s.work_id = :work_id AND s.book = t.book AND s.line = t.line"
            " ORDER BY s.id, t.position"
            " ON CONFLICT DO NOTHING"
        ),
        {"work_id": work_id},
    ).rowcount
    say(f"{spec.slug}: inserted {segments} verses and {tokens} tokens")
    return segments, tokens


def _ensure_work(conn: Connection, spec: WorkSpec) -> int:
    conn.execute(
        text("INSERT INTO language (code, name) VALUES (:code, :name) ON CONFLICT (code) DO NOTHING"),
        {"code": LANGUAGE_CODE, "name": LANGUAGE_NAME},
    )
    conn.execute(
        text(
            "INSERT INTO work (slug, urn, title, author, language_id)"
            " SELECT :slug, :urn, :title, :author, id FROM language WHERE code = :code"
            " ON CONFLICT DO NOTHING"
        ),
        {
            "slug": spec.slug,
            "urn": spec.urn,
            "title": spec.title,
            "author": spec.author,
            "code": LANGUAGE_CODE,
        },
    )
    work_id = conn.execute(
        text("SELECT id FROM work WHERE slug = :slug AND urn = :urn"), {"slug": spec.slug, "urn": spec.urn}
    ).scalar()
    if work_id is None:
        raise IngestError(f"work {spec.slug!r} is stored with another URN than {spec.urn}")
    return int(work_id)


# --- command line -------------------------------------------------------------------------


def parse_books(value: str) -> range:
    """ "3" or "1-3" as a range of book numbers (argparse type)."""
    first, _, last = value.partition("-")
    try:
        start, stop = int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"books must look like 3 or 1-3, not {value!r}") from None
    if start < 1 or stop < start:
        raise argparse.ArgumentTypeError(f"books {value!r}: need 1 <= first <= last")
    return range(start, stop + 1)


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


if __name__ == "__main__":
    sys.exit(main())
