"""HTTP endpoints: /search, /passages/{work}/{ref}, /works (SQL is in app/search.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache, partial
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from psycopg import errors as pg_errors
from pydantic import AfterValidator
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from app import query_reading
from app import search as queries
from app.catalog import WORKS, WorkSlug
from app.db import get_read_engine
from app.embedding import Embedder, default_embedder
from app.highlight import mark
from app.observe import note_db_failure, note_search
from app.schemas import Book, Passage, SearchHit, SearchResponse, Verse, Work
from app.vocabulary import word_counts

MAX_QUERY_CHARS = 256
MAX_LIMIT = 100
MAX_OFFSET = 10_000
MAX_PASSAGE_LINES = 1000
# Something besides whitespace, as an explicit class so that Python and the JSON Schema (ECMA)
# regex of the OpenAPI document agree on it (their `\s` differ, e.g. on U+001E and U+FEFF).
NOT_BLANK = re.compile(
    r"[^\t\n\v\f\r \x1c-\x1f\x85\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)
_REF = re.compile(r"([0-9]{1,3})\.([0-9]{1,5})(?:-([0-9]{1,5}))?")
_SCHEMA_MISSING = (pg_errors.UndefinedTable, pg_errors.UndefinedColumn, pg_errors.UndefinedFunction)

router = APIRouter()

DB_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "database unavailable or its schema not migrated",
        "content": {
            "application/json": {"example": {"detail": "database unavailable", "request_id": "4f3c..."}}
        },
    },
    504: {
        "description": "the query ran past the statement timeout",
        "content": {
            "application/json": {
                "example": {"detail": "the query took too long and was cancelled", "request_id": "4f3c..."}
            }
        },
    },
}


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    return default_embedder()


@contextmanager
def connection() -> Iterator[Connection]:
    """A pooled connection whose database errors become 503/504 JSON (with the request id), never 500."""
    try:
        with get_read_engine().connect() as conn:
            yield conn
    except DBAPIError as exc:
        if isinstance(exc.orig, pg_errors.QueryCanceled):
            note_db_failure("timeout")
            raise HTTPException(504, "the query took too long and was cancelled") from exc
        if isinstance(exc.orig, _SCHEMA_MISSING):
            note_db_failure("unavailable")
            raise HTTPException(503, "database schema not ready (migrations pending?)") from exc
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            note_db_failure("unavailable")
            raise HTTPException(503, "database unavailable") from exc
        raise


def _not_blank(value: str) -> str:
    if not NOT_BLANK.search(value):
        raise ValueError("q must contain something to search for, not only spaces")
    return value


def _one_script(value: str) -> str:
    query_reading.check(value)  # UnreadableQuery is a ValueError: a 422 with its message
    return value


def parse_ref(value: str) -> tuple[int, int, int]:
    """(book, first line, last line) of "1.5" or "1.5-10"; ValueError with a readable message."""
    match = _REF.fullmatch(value)
    if match is None:
        raise ValueError(f"ref must be book.line or book.line-line, e.g. 1.1 or 1.1-10, not {value!r}")
    book, first, last = int(match[1]), int(match[2]), int(match[3] or match[2])
    if last < first:
        raise ValueError(f"ref {value!r}: the last line comes before the first")
    if last - first + 1 > MAX_PASSAGE_LINES:
        raise ValueError(f"ref {value!r}: at most {MAX_PASSAGE_LINES} lines at a time")
    return book, first, last


def _valid_ref(value: str) -> str:
    parse_ref(value)
    return value


QueryText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        json_schema_extra={"pattern": NOT_BLANK.pattern},  # checked by _not_blank, readably
        description="Words to look for, with or without accents and breathings; typos are tolerated. "
        "Greek, or Beta Code (mh=nin a)/eide), or Latin transliteration (menin aeide, Hektor): "
        "the response's read_as says which it was read as. Greek and Latin letters together are a 422.",
        examples=["μηνιν αειδε"],
        openapi_examples={
            "opening": {"summary": "first words of the Iliad", "value": "μηνιν αειδε"},
            "accented": {"summary": "with accents and a typo", "value": "Πηληϊάδεο Ἀχιλῆος"},
            "odyssey": {"summary": "first words of the Odyssey", "value": "ἄνδρα μοι ἔννεπε"},
            "betacode": {"summary": "Beta Code", "value": "mh=nin a)/eide qea/"},
            "transliteration": {"summary": "Latin transliteration", "value": "menin aeide thea"},
        },
    ),
    AfterValidator(_not_blank),
    AfterValidator(_one_script),
]
PassageRef = Annotated[
    str,
    Path(
        description=f"book.line or book.line-line, the last line not before the first, at most "
        f"{MAX_PASSAGE_LINES} lines",
        examples=["1.1-7"],
        json_schema_extra={"pattern": f"^{_REF.pattern}$"},  # checked by _valid_ref, readably
    ),
    AfterValidator(_valid_ref),
]


@router.get(
    "/search",
    tags=["search"],
    responses={422: {"description": "invalid parameters (the message says which)"}, **DB_ERRORS},
)
def search(
    q: QueryText,
    mode: Annotated[
        queries.Mode, Query(description="text: trigram; vector: embedding; hybrid: both, fused")
    ] = queries.Mode.text,
    work: Annotated[WorkSlug | None, Query(description="only this work")] = None,
    book: Annotated[int | None, Query(ge=1, le=999, description="only this book")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="hits per page")] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="hits to skip")] = 0,
) -> SearchResponse:
    """Accent-insensitive, typo-tolerant search over the verses, for Greek, Beta Code or transliteration."""
    with connection() as conn:
        reading = query_reading.read_query(q, partial(word_counts, conn))
        query = queries.SearchQuery(reading.searched, mode, work.value if work else None, book, limit, offset)
        hits = queries.search(conn, query, get_embedder())
    words = query.folded.split()
    note_search(mode.value, reading.read_as, len(hits))
    return SearchResponse(
        query=q,
        read_as=reading.read_as,
        searched=reading.searched,
        folded=query.folded,
        mode=mode.value,
        work=query.work,
        book=book,
        limit=limit,
        offset=offset,
        count=len(hits),
        hits=[_hit(hit, words) for hit in hits],
    )


def _hit(hit: queries.Hit, words: list[str]) -> SearchHit:
    marked = mark(hit.text, words)
    return SearchHit(
        urn=hit.urn,
        work=hit.work,
        book=hit.book,
        line=hit.line,
        ref=hit.ref,
        text=hit.text,
        deleted=hit.deleted,
        score=hit.score,
        text_rank=hit.text_rank,
        vector_rank=hit.vector_rank,
        highlight=marked.html,
        matched_positions=marked.positions,
    )


@router.get(
    "/passages/{work}/{ref}",
    tags=["text"],
    responses={
        404: {"description": "no stored verse in that range"},
        422: {"description": "unknown work or malformed ref"},
        **DB_ERRORS,
    },
)
def passage(work: WorkSlug, ref: PassageRef) -> Passage:
    """The verses of a book.line or book.line-line range, in order; lines the edition omits are absent."""
    book, first, last = parse_ref(ref)
    with connection() as conn:
        verses = queries.passage(conn, work.value, book, first, last)
    if not verses:
        raise HTTPException(404, f"no verses {ref} in {work.value} (not ingested, or not in the edition)")
    canonical = f"{book}.{first}" if first == last else f"{book}.{first}-{last}"
    cts_range = f"{book}.{first}" if first == last else f"{book}.{first}-{book}.{last}"
    return Passage(
        work=work.value,
        ref=canonical,
        urn=f"{WORKS[work.value].urn}:{cts_range}",
        verses=[Verse(**vars(verse)) for verse in verses],
    )


@router.get("/works", tags=["text"], responses=DB_ERRORS)
def works() -> list[Work]:
    """The stored works, with each book's verse count and first and last line numbers."""
    with connection() as conn:
        summaries = queries.works(conn)
    return [
        Work(
            slug=summary.slug,
            urn=summary.urn,
            title=summary.title,
            author=summary.author,
            language=summary.language,
            verses=summary.verses,
            books=[Book(**vars(book)) for book in summary.books],
        )
        for summary in summaries
    ]
