"""The search, passage and catalogue queries (SQL only; HTTP lives in app/routes.py).

Text search ranks by pg_trgm `word_similarity(query, text_fold)`: how well the folded query
matches the best stretch of a verse, so a two-word query scores 1.0 on the verse that contains
both words. The filter is the operator `query <% text_fold`, which the GIN trigram index of the
distinct texts (`text_form`) answers (the planner turns it into `text_fold %> query`), with the
threshold set for the transaction by `set_config(.., true)`. Ties go to the shorter verse (more
of it matched), then to the edition's order. The candidate lists, and the word plans that find
the same top verses while reading about the page, are in app/text_plans.py.

Vector search orders by cosine distance `emb <=> query` through the HNSW index, with
pgvector's strict iterative scan so that work/book filters still fill a page.

Hybrid fuses both candidate lists (each the top `offset + limit`, at least
HYBRID_CANDIDATES) by reciprocal rank fusion, score = Σ 1/(60 + rank), in one statement.
Its candidates are a union of what text and vector mode would page through, so it never
returns fewer hits than the better of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, text

from app.embedding import Embedder
from app.folding import fold
from app.text_plans import (
    BEGINS_MAX,
    KEY_WORDS,
    PER_WORD_TEXT,
    PREFIX_MIN,
    WALK_CAP,
    WORD_SIMILARITY_THRESHOLD,
    text_candidates,
)

RRF_K = 60
HYBRID_CANDIDATES = 100
EF_SEARCH_MIN = 100  # HNSW candidate list: recall@10 about 0.95 here, against 0.9 at pgvector's 40
EF_SEARCH_MAX = 1000  # pgvector's upper bound for hnsw.ef_search


class Mode(StrEnum):
    text = "text"
    vector = "vector"
    hybrid = "hybrid"


@dataclass(frozen=True)
class SearchQuery:
    q: str
    mode: Mode = Mode.text
    work: str | None = None
    book: int | None = None
    limit: int = 10
    offset: int = 0

    @property
    def folded(self) -> str:
        return fold(self.q)


@dataclass(frozen=True)
class Hit:
    work: str
    urn: str
    book: int
    line: int
    ref: str
    text: str
    deleted: bool
    score: float
    text_rank: int | None
    vector_rank: int | None


@dataclass(frozen=True)
class PassageVerse:
    urn: str
    book: int
    line: int
    ref: str
    text: str
    deleted: bool


@dataclass(frozen=True)
class BookSummary:
    book: int
    verses: int
    first_line: int
    last_line: int


@dataclass(frozen=True)
class WorkSummary:
    slug: str
    urn: str
    title: str
    author: str
    language: str
    verses: int
    books: list[BookSummary]


# The vector and hybrid parts, and the final select. {filters}: a fixed fragment of _filters().
_VECTOR_CANDIDATES = """
vector_hits AS (
    SELECT id, 1 - distance AS score, row_number() OVER (ORDER BY distance, id) AS rank
    FROM (
        SELECT s.id, s.emb <=> CAST(:embedding AS vector) AS distance
        FROM text_segment s
        WHERE s.emb IS NOT NULL {filters}
        ORDER BY distance
        LIMIT :candidates
    ) nearest
)"""

_FUSED = f"""
fused AS (
    SELECT coalesce(t.id, v.id) AS id,
           coalesce(1.0 / ({RRF_K} + t.rank), 0) + coalesce(1.0 / ({RRF_K} + v.rank), 0) AS score,
           t.rank AS text_rank, v.rank AS vector_rank
    FROM text_hits t FULL JOIN vector_hits v ON v.id = t.id
)"""

_HITS = """
SELECT w.slug AS work, s.urn, s.book, s.line, s.ref, s.text, s.deleted,
       CAST(h.score AS double precision) AS score, {text_rank} AS text_rank, {vector_rank} AS vector_rank
FROM {source} h
JOIN text_segment s ON s.id = h.id
JOIN work w ON w.id = s.work_id
ORDER BY {order}, s.work_id, s.book, s.line
LIMIT :limit OFFSET :offset"""


def _filters(query: SearchQuery) -> str:
    parts = []
    if query.work is not None:
        parts.append("AND s.work_id = (SELECT id FROM work WHERE slug = :work)")
    if query.book is not None:
        parts.append("AND s.book = :book")
    return " ".join(parts)


def search_sql(mode: Mode, filters: str, words: int = 0, prefix: bool = False, begins: bool = False) -> str:
    """The one statement that answers a search in `mode`."""
    text_cte = text_candidates(filters, words, prefix, begins)
    vector_cte = _VECTOR_CANDIDATES.format(filters=filters)
    if mode is Mode.text:
        ctes, ranks, order = [text_cte], ("h.rank", "NULL"), "h.rank"
    elif mode is Mode.vector:
        ctes, ranks, order = [vector_cte], ("NULL", "h.rank"), "h.rank"
    else:
        ctes, ranks, order = [text_cte, vector_cte, _FUSED], ("h.text_rank", "h.vector_rank"), "h.score DESC"
    source = {Mode.text: "text_hits", Mode.vector: "vector_hits", Mode.hybrid: "fused"}[mode]
    select = _HITS.format(source=source, text_rank=ranks[0], vector_rank=ranks[1], order=order)
    return "WITH" + ",".join(ctes) + select


def search(conn: Connection, query: SearchQuery, embedder: Embedder) -> list[Hit]:
    """The hits for one query; none (without asking the database) if it folds to nothing.

    Several words that the trigram scan does not find together (a typo in each) are tried once
    more word by word (`per_word_statement`)."""
    if not query.folded:
        return []
    sql, params = prepared_statement(conn, query, embedder)
    hits = [Hit(**row) for row in conn.execute(text(sql), params).mappings()]
    if hits or query.mode is not Mode.text or " " not in query.folded:
        return hits
    sql, params = per_word_statement(query)
    return [Hit(**row) for row in conn.execute(text(sql), params).mappings()]


def per_word_statement(query: SearchQuery) -> tuple[str, dict[str, object]]:
    """Text search scoring each word on its own (the mean of their word similarities)."""
    words = query.folded.split()
    keys = sorted(range(len(words)), key=lambda i: -len(words[i]))[:KEY_WORDS]
    cte = PER_WORD_TEXT.format(
        score=" + ".join(f"word_similarity(:w{i}, s.text_fold)" for i in range(len(words))),
        words=len(words),
        keys=" OR ".join(f":w{i} <% s.text_fold" for i in keys),
        filters=_filters(query),
    )
    select = _HITS.format(source="text_hits", text_rank="h.rank", vector_rank="NULL", order="h.rank")
    params: dict[str, object] = {f"w{i}": word for i, word in enumerate(words)}
    params.update(
        candidates=query.offset + query.limit,
        floor=WORD_SIMILARITY_THRESHOLD,
        limit=query.limit,
        offset=query.offset,
        work=query.work,
        book=query.book,
    )
    return "WITH" + cte + select, params


def explain(conn: Connection, query: SearchQuery, embedder: Embedder) -> str:
    """The plan PostgreSQL runs for `query` (EXPLAIN ANALYZE), to check which indexes it uses."""
    sql, params = prepared_statement(conn, query, embedder)
    plan = conn.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}"), params).scalars()
    return "\n".join(plan)


def prepared_statement(
    conn: Connection, query: SearchQuery, embedder: Embedder
) -> tuple[str, dict[str, object]]:
    """Configure the transaction for `query` and return its statement and parameters."""
    folded = query.folded
    wanted = query.offset + query.limit
    candidates = max(wanted, HYBRID_CANDIDATES) if query.mode is Mode.hybrid else wanted
    params: dict[str, object] = {
        "q": folded,
        "candidates": candidates,
        "limit": query.limit,
        "offset": query.offset,
        "work": query.work,
        "book": query.book,
    }
    if query.mode is not Mode.text:
        params["embedding"] = _vector_literal(embedder.embed([folded])[0])
    _configure(conn, query.mode, candidates)
    words = folded.split()
    distinct = sorted(set(words), key=lambda word: (-len(word), word))
    params.update(w0=words[0], words=distinct, padded=[f"% {word} %" for word in distinct])
    prefix = len(words) == 1 and len(folded) >= PREFIX_MIN
    begins = prefix and len(folded) <= BEGINS_MAX
    if begins:
        params["begins"] = f"{folded}%"  # folded: letters, digits and spaces only, never % or _
    return search_sql(query.mode, _filters(query), len(words), prefix, begins), params


def walk_cap(conn: Connection, candidates: int) -> int:
    """How many postings the word plans collect before they walk the verses instead (text_plans)."""
    return int(conn.execute(text(WALK_CAP), {"candidates": candidates}).scalar_one())


def _configure(conn: Connection, mode: Mode, candidates: int) -> None:
    """Index-scan settings for this transaction only (SET LOCAL, as set_config(.., true))."""
    settings = {"pg_trgm.word_similarity_threshold": str(WORD_SIMILARITY_THRESHOLD)}
    if mode is not Mode.vector:
        # The planner prices word_similarity as one operator: on text_form (a table of some
        # thousands of short rows) it would scan and score every row rather than ask its trigram
        # index, 170 ms against 2. No step of a search needs a sequential scan.
        settings["enable_seqscan"] = "off"
    if mode is not Mode.text:
        settings["hnsw.ef_search"] = str(min(max(candidates, EF_SEARCH_MIN), EF_SEARCH_MAX))
        settings["hnsw.iterative_scan"] = "strict_order"
    names = list(settings)
    calls = ", ".join(f"set_config(:name{i}, :value{i}, true)" for i in range(len(names)))
    params = {f"name{i}": name for i, name in enumerate(names)}
    params.update({f"value{i}": settings[name] for i, name in enumerate(names)})
    conn.execute(text(f"SELECT {calls}"), params)


def _vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(repr(value) for value in vector) + "]"


def passage(conn: Connection, work: str, book: int, first: int, last: int) -> list[PassageVerse]:
    """The stored verses of `work` book `book`, lines `first` to `last`, in order (gaps stay gaps)."""
    rows = conn.execute(
        text(
            "SELECT s.urn, s.book, s.line, s.ref, s.text, s.deleted"
            " FROM text_segment s JOIN work w ON w.id = s.work_id"
            " WHERE w.slug = :work AND s.book = :book AND s.line BETWEEN :first AND :last"
            " ORDER BY s.line"
        ),
        {"work": work, "book": book, "first": first, "last": last},
    ).mappings()
    return [PassageVerse(**row) for row in rows]


def works(conn: Connection) -> list[WorkSummary]:
    """Every stored work with its books and verse counts."""
    rows = conn.execute(
        text(
            "SELECT w.slug, w.urn, w.title, w.author, l.code AS language, s.book,"
            "       count(s.id) AS verses, min(s.line) AS first_line, max(s.line) AS last_line"
            " FROM work w JOIN language l ON l.id = w.language_id"
            " LEFT JOIN text_segment s ON s.work_id = w.id"
            " GROUP BY w.id, l.code, s.book ORDER BY w.id, s.book"
        )
    ).mappings()
    summaries: dict[str, WorkSummary] = {}
    for row in rows:
        summary = summaries.get(row["slug"])
        if summary is None:
            summary = summaries[row["slug"]] = WorkSummary(
                row["slug"], row["urn"], row["title"], row["author"], row["language"], 0, []
            )
        if row["book"] is not None:
            summary.books.append(BookSummary(row["book"], row["verses"], row["first_line"], row["last_line"]))
    return [
        WorkSummary(s.slug, s.urn, s.title, s.author, s.language, sum(b.verses for b in s.books), s.books)
        for s in summaries.values()
    ]
