"""The search, passage and catalogue queries (SQL only; HTTP lives in app/routes.py).

Text search ranks by pg_trgm `word_similarity(query, text_fold)`: how well the folded
query matches the best stretch of a verse, so a two-word query scores 1.0 on the verse
that contains both words. The filter is the operator `query <% text_fold`, which the GIN
trigram index answers (the planner turns it into `text_fold %> query`), with the
threshold set for the transaction by `set_config(.., true)`. Ties go to the shorter
verse (more of it matched), then to the edition's order.

Vector search orders by cosine distance `emb <=> query` through the HNSW index, with
pgvector's strict iterative scan so that work/book filters still fill a page.

Hybrid fuses both candidate lists (each the top `offset + limit`, at least
HYBRID_CANDIDATES) by reciprocal rank fusion, score = Σ 1/(60 + rank), in one statement.
Its candidates are a union of what text and vector mode would page through, so it never
returns fewer hits than the better of the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, text

from app.embedding import Embedder
from app.folding import fold

WORD_SIMILARITY_THRESHOLD = 0.5  # lower than pg_trgm's 0.6 so a one-letter typo in a short word matches
RRF_K = 60
HYBRID_CANDIDATES = 100
EF_SEARCH_MIN = 100  # HNSW candidate list: recall@10 about 0.95 here, against 0.9 at pgvector's 40
EF_SEARCH_MAX = 1000  # pgvector's upper bound for hnsw.ef_search
PREFIX_MIN = 4  # a one-word query this long also finds the words it begins
PREFIX_SCORE = 0.9  # such a word beginning scores this (a whole word scores 1.0, typos less)
KEY_WORDS = 2  # a query with a typo in each word: verses found through its longest words
BEGINS_MAX = 9  # the longest beginning whose verses no looser match outscores: 9/10 <= PREFIX_SCORE


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


# Candidate lists. {filters} is one of the fixed fragments of _filters(), never user input.
_FUZZY_TEXT = """
        SELECT s.id, {score} AS score, length(s.text_fold) AS size, s.work_id, s.book, s.line
        FROM text_segment s
        WHERE :q <% s.text_fold {filters}
        ORDER BY score DESC, size, s.work_id, s.book, s.line
        LIMIT :candidates"""

_TEXT_CANDIDATES = """
text_hits AS (
    SELECT id, score, row_number() OVER (ORDER BY score DESC, size, work_id, book, line) AS rank
    FROM ({fuzzy}
    ) ranked
)"""

_EXACT = """
exact AS (
    SELECT s.id, 1.0::float8 AS score, length(s.text_fold) AS size, s.work_id, s.book, s.line
    FROM text_segment s
    WHERE {holds} {filters}
    ORDER BY length(s.text_fold), s.work_id, s.book, s.line
    LIMIT :candidates
),"""

# The verses that hold every word of the query as a word score 1.0 (word_similarity counts the
# query's trigrams found in one stretch of the verse), above any other, and rank among themselves
# by size, then the edition's order. Walked in that order (ix_text_segment_size_order, each verse
# checked against the token index), or from a rare word's verses (ix_token_fold), the scan stops
# at the page: its work follows `offset + limit`, not how many verses hold a common word (και:
# 5,012). Only when they do not fill the page does the trigram scan run, ranking as before.
_WORD_CANDIDATES = """{exact}
text_hits AS (
    SELECT id, score, row_number() OVER (ORDER BY score DESC, size, work_id, book, line) AS rank
    FROM (
        SELECT * FROM exact WHERE (SELECT count(*) FROM exact) >= :candidates
        UNION ALL
        SELECT * FROM ({fuzzy}
        ) fuzzy WHERE (SELECT count(*) FROM exact) < :candidates
    ) ranked
)"""

# A one-word query of PREFIX_MIN to BEGINS_MAX letters: after the verses holding it as a whole word
# (1.0) come those holding a word that begins so (PREFIX_SCORE), and no other verse scores as much
# (its word similarity is at most len/(len + 1)), so they too are taken in rank order and stop at
# the page. Rare beginnings first: when fewer than :begins_cap words begin so (`begins_cap()`),
# their verses are collected and sorted; otherwise the verses are walked in rank order, each checked
# for a word that begins so as _PREFIX_SCORE checks it. The planner cannot tell the two cases apart
# from `LIKE` alone. Neither runs when the whole word's verses fill the page.
_BEGINS_CANDIDATES = """{exact}
begins_postings AS MATERIALIZED (
    SELECT t.segment_id FROM token t WHERE t.fold LIKE :begins LIMIT :begins_cap
),
begins AS (
    (SELECT s.id, {prefix}::float8 AS score, length(s.text_fold) AS size, s.work_id, s.book, s.line
     FROM text_segment s
     WHERE s.id IN (SELECT segment_id FROM begins_postings) {filters}
       AND (SELECT count(*) FROM begins_postings) < :begins_cap
     ORDER BY length(s.text_fold), s.work_id, s.book, s.line
     LIMIT :candidates)
    UNION ALL
    (SELECT s.id, {prefix}::float8 AS score, length(s.text_fold) AS size, s.work_id, s.book, s.line
     FROM text_segment s
     WHERE strpos(' ' || s.text_fold, ' ' || :q) > 0 {filters}
       AND (SELECT count(*) FROM begins_postings) >= :begins_cap
     ORDER BY length(s.text_fold), s.work_id, s.book, s.line
     LIMIT :candidates)
),
counted AS MATERIALIZED (
    SELECT e.n >= :candidates AS by_word,
           e.n < :candidates AND (SELECT count(*) FROM begins) >= :candidates AS by_beginning
    FROM (SELECT count(*) AS n FROM exact) e
),
text_hits AS (
    SELECT id, score, row_number() OVER (ORDER BY score DESC, size, work_id, book, line) AS rank
    FROM (
        SELECT * FROM exact WHERE (SELECT by_word OR by_beginning FROM counted)
        UNION ALL
        (SELECT * FROM begins
         WHERE (SELECT by_beginning FROM counted) AND id NOT IN (SELECT id FROM exact)
         ORDER BY size, work_id, book, line
         LIMIT greatest(:candidates - (SELECT count(*) FROM exact), 0))
        UNION ALL
        SELECT * FROM ({fuzzy}
        ) fuzzy
        WHERE (SELECT NOT (by_word OR by_beginning) FROM counted)
    ) ranked
)"""

# Several words none of which the trigram scan found (a typo in each): each word scored on its own,
# the verse's score their mean, over the verses that match one of the KEY_WORDS longest words
# (the rarest, as a rule), so that the scan stays on the trigram index.
_PER_WORD_TEXT = """
text_hits AS (
    SELECT id, score, row_number() OVER (ORDER BY score DESC, size, work_id, book, line) AS rank
    FROM (
        SELECT s.id, ({score}) / {words} AS score, length(s.text_fold) AS size, s.work_id, s.book, s.line
        FROM text_segment s
        WHERE ({keys}) {filters}
        ORDER BY score DESC, size, s.work_id, s.book, s.line
        LIMIT :candidates
    ) ranked
    WHERE score >= :floor
)"""

# One word: each verse walked in rank order is checked against the token index (a probe each).
_HOLDS_ONE = "EXISTS (SELECT 1 FROM token t WHERE t.fold = :w0 AND t.segment_id = s.id)"
# Several: the verses among the KEY_WORDS longest (as a rule the rarest) words' postings that hold
# them all, every word found in the verse's folded text (padded, so only whole words count), and
# the words close enough together to score 1.0 (word_similarity is less when others come between).
_HOLDS_ALL = (
    "s.id IN (SELECT t.segment_id FROM token t WHERE t.fold = ANY(CAST(:keys AS text[]))"
    " GROUP BY t.segment_id HAVING count(DISTINCT t.fold) = cardinality(CAST(:keys AS text[])))"
    " AND (SELECT bool_and(strpos(' ' || s.text_fold || ' ', ' ' || w || ' ') > 0)"
    "      FROM unnest(CAST(:words AS text[])) w)"
    " AND word_similarity(:q, s.text_fold) >= 1"
)

# A word's beginning (PREFIX_MIN letters or more) in some word of the verse ranks above looser matches.
_PREFIX_SCORE = (
    "CASE WHEN position(' ' || :q IN ' ' || s.text_fold) > 0"
    " THEN greatest(word_similarity(:q, s.text_fold), {prefix}) ELSE word_similarity(:q, s.text_fold) END"
)

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


def text_candidates(filters: str, words: int, prefix: bool, begins: bool = False) -> str:
    """The text candidates' CTE(s): the verses holding all `words` words (:w0, :w1, ...) when they
    fill the page, else (`begins`) those holding a word that begins with :w0, else the trigram
    scan; `words` 0: the trigram scan alone."""
    score = _PREFIX_SCORE.format(prefix=PREFIX_SCORE) if prefix else "word_similarity(:q, s.text_fold)"
    fuzzy = _FUZZY_TEXT.format(score=score, filters=filters)
    if not words:
        return _TEXT_CANDIDATES.format(fuzzy=fuzzy)
    exact = _EXACT.format(holds=_HOLDS_ONE if words == 1 else _HOLDS_ALL, filters=filters)
    template = _BEGINS_CANDIDATES if begins else _WORD_CANDIDATES
    return template.format(exact=exact, fuzzy=fuzzy, filters=filters, prefix=PREFIX_SCORE)


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
    cte = _PER_WORD_TEXT.format(
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
    params.update(w0=words[0], words=distinct, keys=distinct[:KEY_WORDS])
    prefix = len(words) == 1 and len(folded) >= PREFIX_MIN
    begins = prefix and len(folded) <= BEGINS_MAX
    if begins:
        params["begins"] = f"{folded}%"  # folded: letters, digits and spaces only, never % or _
        params["begins_cap"] = begins_cap(conn, candidates)
    return search_sql(query.mode, _filters(query), len(words), prefix, begins), params


def begins_cap(conn: Connection, candidates: int) -> int:
    """How many words may begin so before walking beats collecting: walking reads about
    candidates x verses / postings verses, collecting reads the postings, so the two cost the same
    near sqrt(candidates x verses). The verse count is the planner's estimate (no scan)."""
    verses = conn.execute(
        text("SELECT greatest(reltuples, 1) FROM pg_class WHERE oid = 'text_segment'::regclass")
    ).scalar_one()
    return max(candidates, math.isqrt(int(candidates * verses)))


def _configure(conn: Connection, mode: Mode, candidates: int) -> None:
    """Index-scan settings for this transaction only (SET LOCAL, as set_config(.., true))."""
    settings = {"pg_trgm.word_similarity_threshold": str(WORD_SIMILARITY_THRESHOLD)}
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
