"""The text search's candidate lists as SQL: the bounded word plans and the trigram scan.

Text search ranks by pg_trgm `word_similarity(query, text_fold)`, ties to the shorter verse, then
the edition's order. The trigram scan (`:q <% text_fold`, the GIN index) scores every verse it
finds; the word plans below find the same top verses, in the same order, while reading about the
page (`offset + limit`, :candidates) rather than every verse that holds a common word:

- The verses that hold every word of the query score 1.0 (word_similarity counts the query's
  trigrams found in one stretch of the verse), above any other. When they fill the page, they are
  the answer.
- A one-word query of PREFIX_MIN to BEGINS_MAX letters: next come the verses holding a word that
  begins so (PREFIX_SCORE); no other verse scores as much (its word similarity is at most
  len/(len + 1)). When the two fill the page, they are the answer.
- Otherwise the trigram scan runs, ranking as before, over the distinct texts (`text_form`):
  each text is scored once, and the verses of the best texts are taken until the page is full.

A word's verses come in rank order from its postings: each token carries its verse's size, work,
book and line, and ix_token_fold_rank lists a word's tokens so. The whole-word sets read their
postings in that order and stop at the page. A word's beginning matches many words, whose
postings are in no one order, so it goes through `_collect_or_walk`: when fewer than the walk cap
of postings match, they are sorted into rank order (from the covering index, no verse read);
otherwise the verses are walked in rank order (ix_text_segment_size_order), each checked in its
own folded text, and the walk stops at the page. The cap is sqrt(candidates x verses), where the
two cost the same: the walk reads about candidates x verses / matches verses, the collection the
matches. (The planner cannot make that choice itself: it knows neither how many words begin so
from `LIKE`, nor the page at plan time.)

Every {filters} is one of the fixed fragments of `app.search._filters()`, never user input; the
user's words are bound parameters (:q, :w0, :words, :begins).
"""

from __future__ import annotations

WORD_SIMILARITY_THRESHOLD = 0.5  # lower than pg_trgm's 0.6 so a one-letter typo in a short word matches
PREFIX_MIN = 4  # a one-word query this long also finds the words it begins
PREFIX_SCORE = 0.9  # such a word beginning scores this (a whole word scores 1.0, typos less)
BEGINS_MAX = 9  # the longest beginning whose verses no looser match outscores: 9/10 <= PREFIX_SCORE
KEY_WORDS = 2  # a query with a typo in each word: verses found through its longest words

_BY_WORD = "t.fold, t.size, t.work_id, t.book, t.line, t.segment_id"  # ix_token_fold_rank's order
_BY_BEGINNING = "t.fold USING ~<~"  # ix_token_fold_prefix's (text_pattern_ops) order
_COLUMNS = "s.id, {score} AS score, length(s.text_fold) AS size, s.work_id, s.book, s.line"
_RANK_ORDER = "length(s.text_fold), s.work_id, s.book, s.line"
_POSTING_RANK = "s.size, s.work_id, s.book, s.line"  # the rank columns each token carries
_RANKED = "row_number() OVER (ORDER BY score DESC, size, work_id, book, line) AS rank"

# The walk cap, from the planner's verse count (no scan).
WALK_CAP = (
    "SELECT greatest(:candidates, sqrt(:candidates * greatest(reltuples, 1)))::int"
    " FROM pg_class WHERE oid = 'text_segment'::regclass"
)

# The trigram scan over the verses: every verse the index finds is scored. The plan the others
# must agree with (the tests compare them); no search runs it.
_VERSE_SCAN = f"""
        SELECT {_COLUMNS}
        FROM text_segment s
        WHERE :q <% s.text_fold {{filters}}
        ORDER BY score DESC, size, s.work_id, s.book, s.line
        LIMIT :candidates"""

# The same ranking, with each distinct text scored once (text_form, whose trigram index finds them):
# the texts in score order, then their verses through ix_text_segment_text_fold. The incremental
# sort (presorted by score and size) stops at the page, after the last text tied with it, so a
# formula repeated 300 times costs its first verses, not 300 scores.
_FUZZY_TEXT = """
        SELECT v.id, f.score, f.size, v.work_id, v.book, v.line
        FROM (
            SELECT s.text_fold, {score} AS score, length(s.text_fold) AS size
            FROM text_form s
            WHERE :q <% s.text_fold
            ORDER BY score DESC, size
        ) f
        CROSS JOIN LATERAL (
            SELECT s.id, s.work_id, s.book, s.line FROM text_segment s
            WHERE s.text_fold = f.text_fold {filters}
        ) v
        ORDER BY f.score DESC, f.size, v.work_id, v.book, v.line
        LIMIT :candidates"""

# A word's beginning (PREFIX_MIN letters or more) in some word of the verse ranks above looser matches.
_PREFIX_SCORE = (
    "CASE WHEN position(' ' || :q IN ' ' || s.text_fold) > 0"
    " THEN greatest(word_similarity(:q, s.text_fold), {prefix}) ELSE word_similarity(:q, s.text_fold) END"
)

# One word: its verses straight from its postings, which ix_token_fold_rank lists in rank order
# (each token carries its verse's size, work, book and line), the page's worth and no more.
_EXACT_WORD = f"""
exact AS (
    SELECT DISTINCT ON ({_POSTING_RANK}) s.segment_id AS id, 1.0::float8 AS score, {_POSTING_RANK}
    FROM token s
    WHERE s.fold = :w0 {{filters}}
    ORDER BY {_POSTING_RANK}
    LIMIT :candidates
),"""

# Several words: the rarest word's verses (its postings counted up to the cap), in rank order from
# its postings, that hold every word of the query (padded, so only whole words count: :padded holds
# '% word %' for each); of those, the first :candidates whose words are close enough together to
# score 1.0 (word_similarity is less when others come between). Both checks run row by row on the
# verses in rank order (OFFSET 0 keeps them out of any sort) and stop at the page: a formula held
# by 600 verses costs the page, not 600 checks.
_EXACT_ALL = f"""
rarest AS MATERIALIZED (
    SELECT w FROM unnest(CAST(:words AS text[])) w
    ORDER BY (SELECT count(*) FROM (
        SELECT 1 FROM token t WHERE t.fold = w ORDER BY {_BY_WORD} LIMIT (SELECT n FROM walk_cap)
    ) postings), w
    LIMIT 1
),
exact AS (
    SELECT id, score, size, work_id, book, line
    FROM (
        SELECT p.id, 1.0::float8 AS score, p.size, p.work_id, p.book, p.line, v.text_fold
        FROM (
            SELECT DISTINCT ON ({_POSTING_RANK}) s.segment_id AS id, {_POSTING_RANK}
            FROM token s
            WHERE s.fold = (SELECT w FROM rarest) {{filters}}
            ORDER BY {_POSTING_RANK}
        ) p
        JOIN text_segment v ON v.id = p.id
        WHERE (' ' || v.text_fold || ' ') LIKE ALL (CAST(:padded AS text[]))
        ORDER BY p.size, p.work_id, p.book, p.line
        OFFSET 0
    ) holding
    WHERE word_similarity(:q, holding.text_fold) >= 1
    LIMIT :candidates
),"""

_WORD_CANDIDATES = """
text_hits AS (
    SELECT id, score, {ranked}
    FROM (
        SELECT * FROM exact WHERE (SELECT count(*) FROM exact) >= :candidates
        UNION ALL
        SELECT * FROM ({fuzzy}
        ) fuzzy WHERE (SELECT count(*) FROM exact) < :candidates
    ) ranked
)"""

# The beginnings are looked at only when the whole word's verses leave the page short; they fill
# what the whole word's verses leave.
_BEGINS_CANDIDATES = """
counted AS MATERIALIZED (
    SELECT e.n AS exact, e.n >= :candidates AS by_word,
           e.n < :candidates AND (SELECT count(*) FROM begins) >= :candidates AS by_beginning
    FROM (SELECT count(*) AS n FROM exact) e
),
text_hits AS (
    SELECT id, score, {ranked}
    FROM (
        SELECT * FROM exact WHERE (SELECT by_word OR by_beginning FROM counted)
        UNION ALL
        (SELECT * FROM begins
         WHERE (SELECT by_beginning FROM counted) AND id NOT IN (SELECT id FROM exact)
         ORDER BY size, work_id, book, line
         LIMIT greatest(:candidates - (SELECT exact FROM counted), 0))
        UNION ALL
        SELECT * FROM ({fuzzy}
        ) fuzzy
        WHERE (SELECT NOT (by_word OR by_beginning) FROM counted)
    ) ranked
)"""

# Several words none of which the trigram scan found (a typo in each): each word scored on its own,
# the verse's score their mean, over the verses that match one of the KEY_WORDS longest words
# (the rarest, as a rule), so that the scan stays on the trigram index.
PER_WORD_TEXT = f"""
text_hits AS (
    SELECT id, score, {_RANKED}
    FROM (
        SELECT {_COLUMNS.format(score="({score}) / {words}")}
        FROM text_segment s
        WHERE ({{keys}}) {{filters}}
        ORDER BY score DESC, size, s.work_id, s.book, s.line
        LIMIT :candidates
    ) ranked
    WHERE score >= :floor
)"""


def _collect_or_walk(name: str, postings: str, in_index: str, in_row: str, score: str, filters: str) -> str:
    """CTEs `{name}_postings` (the token rows matching `postings`, counted up to the walk cap) and
    `{name}`: the first :candidates verses in rank order that match, collected from the postings
    when they are fewer than the cap (sorted by the rank columns each token carries, no verse
    read), else walked in rank order and checked with `in_row`. `in_index` orders the postings as
    their index does, so that counting them stops at the cap (a bitmap scan, the planner's choice
    otherwise, reads every posting of a common word first)."""
    columns = _COLUMNS.format(score=score)
    count = f"(SELECT count(*) FROM {name}_postings)"
    return f"""
{name}_postings AS MATERIALIZED (
    SELECT t.segment_id, t.size, t.work_id, t.book, t.line FROM token t WHERE {postings}
    ORDER BY {in_index} LIMIT (SELECT n FROM walk_cap)
),
{name} AS (
    (SELECT DISTINCT ON ({_POSTING_RANK}) s.segment_id AS id, {score} AS score, {_POSTING_RANK}
     FROM {name}_postings s
     WHERE {count} < (SELECT n FROM walk_cap) {filters}
     ORDER BY {_POSTING_RANK} LIMIT :candidates)
    UNION ALL
    (SELECT {columns} FROM text_segment s
     WHERE {in_row} {filters} AND {count} >= (SELECT n FROM walk_cap)
     ORDER BY {_RANK_ORDER} LIMIT :candidates)
),"""


def text_candidates(filters: str, words: int, prefix: bool, begins: bool = False) -> str:
    """The text candidates' CTE(s), ending in `text_hits` (id, score, rank): the verses holding all
    `words` words (:w0 for one, :words for several) when they fill the page, else (`begins`) with
    those holding a word that begins with :q, else the trigram scan; `words` 0: the trigram scan
    alone (the plan the word plans must agree with). `prefix`: a beginning scores PREFIX_SCORE."""
    score = _PREFIX_SCORE.format(prefix=PREFIX_SCORE) if prefix else "word_similarity(:q, s.text_fold)"
    fuzzy = _FUZZY_TEXT.format(score=score, filters=filters)
    if not words:
        scan = _VERSE_SCAN.format(score=score, filters=filters)
        return f"\ntext_hits AS (\n    SELECT id, score, {_RANKED}\n    FROM ({scan}\n    ) ranked\n)"
    ctes = [f"\nwalk_cap AS MATERIALIZED (SELECT ({WALK_CAP}) AS n),"]
    if words == 1:
        ctes.append(_EXACT_WORD.format(filters=filters))
    else:
        ctes.append(_EXACT_ALL.format(filters=filters))
    if begins:
        in_row = "strpos(' ' || s.text_fold, ' ' || :q) > 0"  # as _PREFIX_SCORE finds a beginning
        ctes.append(
            _collect_or_walk(
                "begins", "t.fold LIKE :begins", _BY_BEGINNING, in_row, f"{PREFIX_SCORE}::float8", filters
            )
        )
        ctes.append(_BEGINS_CANDIDATES.format(ranked=_RANKED, fuzzy=fuzzy))
    else:
        ctes.append(_WORD_CANDIDATES.format(ranked=_RANKED, fuzzy=fuzzy))
    return "".join(ctes)
