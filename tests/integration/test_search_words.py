"""One-word queries on both poems: common words answered by a bounded plan that ranks exactly as
the trigram scan does, and word beginnings ranked above looser matches (real PostgreSQL, EXPLAIN)."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from app.embedding import default_embedder
from app.search import Mode, SearchQuery, _filters, prepared_statement, search, walk_cap
from app.text_plans import PREFIX_SCORE, text_candidates
from tests.support.plans import node_rows, plan_of

SIZE_ORDER_SCAN = "Index Scan using ix_text_segment_size_order"
RANKED_POSTINGS = "Index Only Scan using ix_token_fold_rank"  # a word's postings in rank order


@pytest.fixture(scope="module")
def conn(both_poems: Connection) -> Connection:
    return both_poems


def text_ids(conn: Connection, query: SearchQuery, words: int, prefix: bool = False) -> list[int]:
    """The text candidates' verse ids in rank order: the bounded plans for `words` words (and a
    word's beginning, with `prefix`), or (0) the trigram scan alone, the plan before them."""
    try:
        _, params = prepared_statement(conn, query, default_embedder())
        ctes = text_candidates(_filters(query), words, prefix, begins=prefix and words == 1)
        return list(
            conn.execute(text(f"WITH{ctes} SELECT id FROM text_hits ORDER BY rank"), params).scalars()
        )
    finally:
        conn.rollback()


@pytest.mark.parametrize(
    "query",
    [
        SearchQuery("καὶ"),
        SearchQuery("δέ", limit=25, offset=40),
        SearchQuery("τε", work="odyssey"),
        SearchQuery("καὶ", work="iliad", book=9, limit=20),
        SearchQuery("ἄνδρα"),  # a word in fewer verses than the bounded plan reads
        SearchQuery("Ἀχιλῆος"),
        SearchQuery("αχιλησς"),  # a typo: no verse holds it, the trigram scan answers
        SearchQuery("ὣς ἔφατ᾽", limit=30),  # a formula: the verses holding both words fill the page
        SearchQuery("τε καὶ", offset=10),
        SearchQuery("μῆνιν ἄειδε"),  # one verse holds both: the trigram scan fills the rest
        SearchQuery("ποδαρκησ διοσ αχιλευς", limit=40),  # a typo'd formula: its texts in score order
        SearchQuery("πηληιαδεω αχιλησς", work="iliad", book=1),  # and a filter on their verses
        SearchQuery("ατρειδης τε αναξ ανδρων και διος αχιλλευς", offset=5),  # a long verse, a few of it
    ],
    ids=lambda q: f"{q.q}-{q.work}-{q.book}-{q.offset}",
)
def test_the_bounded_word_plan_ranks_exactly_as_the_trigram_scan(
    conn: Connection, query: SearchQuery
) -> None:
    wanted = query.offset + query.limit
    bounded = text_ids(conn, query, len(query.folded.split()))
    assert bounded == text_ids(conn, query, 0)[:wanted]


@pytest.mark.parametrize(
    "query",
    [
        SearchQuery("αχιλ"),
        SearchQuery("πηληια", limit=30),
        SearchQuery("οδυσσ", work="odyssey"),
        SearchQuery("ανδρ"),
        SearchQuery("ἄνδρα", limit=100),  # 84 verses hold the word: those beginning so fill the rest
        SearchQuery("ἄνδρα", limit=50, offset=150),  # 204 verses begin so: the page ends at 200
        SearchQuery("Ἕκτωρ", limit=30, offset=190),  # past the word's 202 verses: the trigram scan
        SearchQuery("ἄνδρα", book=1, limit=12),  # a filter: fewer beginnings than the page
    ],
    ids=lambda q: f"{q.q}-{q.work}",
)
def test_the_bounded_beginning_plan_ranks_exactly_as_the_trigram_scan(
    conn: Connection, query: SearchQuery
) -> None:
    wanted = query.offset + query.limit
    assert text_ids(conn, query, 1, prefix=True) == text_ids(conn, query, 0, prefix=True)[:wanted]


def test_a_common_word_reads_about_the_page_not_every_verse_that_holds_it(conn: Connection) -> None:
    plan = plan_of(conn, SearchQuery("καὶ", Mode.text))
    lines = plan.splitlines()
    read = node_rows(lines, f"{RANKED_POSTINGS} on token")
    holding = conn.execute(
        text("SELECT count(DISTINCT segment_id) FROM token WHERE fold = 'και'")
    ).scalar_one()
    conn.rollback()
    assert holding > 4000 and read and float(read[0]) < 20, plan  # the page's postings, in rank order
    assert SIZE_ORDER_SCAN not in plan  # and no verse walked to find them
    trigram = [lines[n - 1] for n, line in enumerate(lines) if "<% text_fold" in line or "%> 'και'" in line]
    assert trigram and all("never executed" in node for node in trigram), plan  # the scan does not run


def plan_lines(conn: Connection, query: SearchQuery) -> list[str]:
    return plan_of(conn, query).splitlines()


def test_a_rare_beginning_collects_its_verses_instead_of_walking_every_verse(conn: Connection) -> None:
    lines = plan_lines(conn, SearchQuery("αχιλ", Mode.hybrid))  # hybrid: 100 text candidates
    walks = node_rows(lines, SIZE_ORDER_SCAN)
    collected = {
        float(rows) for rows in node_rows(lines, "CTE Scan on begins_postings") if rows != "never executed"
    }
    assert walks and set(walks) == {"never executed"}, lines  # the walk read 7,831 verses for 100 before
    assert len(collected) == 1 and 100 < collected.pop() < 1000, lines  # the 383 words that begin αχιλ


def test_a_common_beginning_walks_the_verses_in_rank_order_and_stops_at_the_page(
    conn: Connection,
) -> None:
    cap = walk_cap(conn, 10)
    conn.rollback()
    lines = plan_lines(conn, SearchQuery("αχαι", Mode.text))  # 753 words begin so, none is αχαι
    walks = node_rows(lines, SIZE_ORDER_SCAN)
    counted = {rows for rows in node_rows(lines, "CTE Scan on begins_postings") if rows != "never executed"}
    assert [rows for rows in walks if rows != "never executed"] == ["10.00"], lines  # the page, not 700
    assert counted == {f"{cap}.00"}, lines  # the words that begin so, counted up to the cap only


def test_several_words_are_found_through_the_rarest_words_postings_alone(conn: Connection) -> None:
    holding = dict(
        conn.execute(
            text("SELECT fold, count(*) FROM token WHERE fold IN ('κορυθαιολοσ', 'εκτωρ') GROUP BY fold")
        ).all()
    )
    conn.rollback()
    lines = plan_lines(conn, SearchQuery("κορυθαίολος Ἕκτωρ", Mode.text))
    walked = [line for line in lines if f"{RANKED_POSTINGS} on token s" in line]  # the exact CTE's
    assert holding["κορυθαιολοσ"] < holding["εκτωρ"] / 4, holding
    assert len(walked) == 1 and "loops=1)" in walked[0], lines
    rows = float(walked[0].split("rows=")[1].split()[0])
    assert 10 <= rows < holding["κορυθαιολοσ"], lines  # its postings, in rank order, up to the page


def test_a_common_words_postings_are_counted_only_up_to_the_cap(conn: Connection) -> None:
    cap = walk_cap(conn, 10)
    conn.rollback()
    lines = plan_lines(conn, SearchQuery("τε καὶ", Mode.text))  # two words in thousands of verses each
    at = next(n for n, line in enumerate(lines) if line.strip() == "CTE rarest")
    counted = [line for line in lines[at : at + 20] if f"{RANKED_POSTINGS} on token t" in line]
    assert counted and f"rows={cap}.00 loops=2" in counted[0], lines  # the cap for each, then it stops
    assert not any("Bitmap" in line for line in lines[at : at + 20]), lines  # a bitmap reads them all


def test_a_formulas_verses_are_scored_only_up_to_the_page(conn: Connection) -> None:
    lines = plan_lines(conn, SearchQuery("κορυθαίολος Ἕκτωρ", Mode.text))  # 37 verses hold both words
    scored = node_rows(lines, "Subquery Scan on holding")
    checked = float(node_rows(lines, "Nested Loop")[0])
    assert scored == ["10.00"] and checked < 20, lines  # word_similarity and LIKE on ~10 verses, not 37


def test_a_word_whose_verses_fill_the_page_never_looks_at_beginnings(conn: Connection) -> None:
    lines = plan_lines(conn, SearchQuery("Ἕκτωρ", Mode.text))
    at = [n for n, line in enumerate(lines) if line.strip() == "CTE begins_postings"]
    assert at and "never executed" in lines[at[0] + 1], lines


def test_a_misspelled_word_goes_through_the_trigram_index_of_the_distinct_texts(conn: Connection) -> None:
    plan = plan_of(conn, SearchQuery("αχιλησς", Mode.text))
    assert "Bitmap Index Scan on ix_text_form_text_fold_trgm" in plan
    assert "Seq Scan" not in plan  # neither the texts nor the verses are scanned and scored one by one


def test_a_misspelled_formula_takes_the_verses_of_its_best_texts_and_stops_at_the_page(
    conn: Connection,
) -> None:
    query = SearchQuery("ποδαρκησ διοσ αχιλευς", Mode.text)  # one λ short of a formula in 23 verses
    lines = plan_lines(conn, query)
    texts = float(node_rows(lines, "Bitmap Heap Scan on text_form")[0])  # the texts the index found
    lookups = [line for line in lines if "Index Scan using ix_text_segment_text_fold" in line]
    loops = int(lookups[0].split("loops=")[1].rstrip(")")) if lookups else 0
    assert any("Incremental Sort" in line for line in lines), lines
    assert texts > 20 and 1 <= loops < texts / 4, lines  # the verses of a few texts, not of every one
    hits = search(conn, query, default_embedder())
    conn.rollback()
    assert len(hits) == 10 and all("ποδαρκησ διοσ αχιλλευσ" in hit_fold(conn, hit.urn) for hit in hits)


@pytest.mark.parametrize("beginning", ["αχιλ", "πηληια", "Ὀδυσσ", "αγαμεμ"])
def test_a_word_beginning_ranks_the_words_it_begins_above_looser_matches(
    conn: Connection, beginning: str
) -> None:
    query = SearchQuery(beginning, limit=50)
    hits = search(conn, query, default_embedder())
    conn.rollback()
    folded = query.folded
    begins = [any(word.startswith(folded) for word in hit_fold(conn, hit.urn).split()) for hit in hits]
    assert begins[0] and begins.count(True) >= 5, [hit.ref for hit in hits]
    first_loose = begins.index(False) if False in begins else len(begins)
    assert all(begins[:first_loose]) and not any(begins[first_loose:])  # every beginning above every other
    assert all(hit.score == pytest.approx(PREFIX_SCORE) for hit in hits[:first_loose] if hit.score < 1)


def hit_fold(conn: Connection, urn: str) -> str:
    folded = conn.execute(
        text("SELECT text_fold FROM text_segment WHERE urn = :urn"), {"urn": urn}
    ).scalar_one()
    conn.rollback()
    return str(folded)


@pytest.mark.parametrize(
    ("typos", "expected"),
    [
        ("μῆνυν ἄεοδε θεὰ", "iliad 1.1"),  # μῆνιν ἄειδε: the trigram scan finds nothing, each word is scored
        ("οὐλομένιν μυρίʼ Ἀχαιοῖς ἄλγε᾽ ἔθηκα", "iliad 1.2"),  # οὐλομένην, ἔθηκε
        ("ἄνδρα μοι ἔννεπα μοῦσα πολύτροπων", "odyssey 1.1"),  # ἔννεπε, πολύτροπον
        ("Τροίης ἱερων πτολίεθρον ἔπερσαν", "odyssey 1.2"),  # ἱερὸν, ἔπερσεν
        ("ῥοδοδάκτιλος Ἠώς", "iliad 1.477"),  # one word off, the other's accent
        ("κορυθαιολοσ Ἕκτορ", "iliad 6.116"),  # Ἕκτωρ, a sigma form
    ],
)
def test_a_typo_in_each_of_two_words_still_finds_the_verse_in_the_top_three(
    conn: Connection, typos: str, expected: str
) -> None:
    hits = search(conn, SearchQuery(typos, limit=3), default_embedder())
    conn.rollback()
    assert expected in [f"{hit.work} {hit.ref}" for hit in hits], [f"{h.work} {h.ref}" for h in hits]
