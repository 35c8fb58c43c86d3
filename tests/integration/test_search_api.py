"""The HTTP API (/search, /passages, /works) in-process, on the real database with both works loaded."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ops.procs import free_port
from tests.support.app import Search, client_for, refs
from tests.support.observe import table_locked

ILIAD_1_1 = "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2:1.1"


# --- ranking -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [None, "text", "hybrid"])
def test_opening_words_rank_iliad_1_1_first(search: Search, mode: str | None) -> None:
    result = search("μηνιν αειδε", **({"mode": mode} if mode else {}))
    first = result["hits"][0]
    assert (first["urn"], first["work"], first["book"], first["line"]) == (ILIAD_1_1, "iliad", 1, 1)
    assert first["text"] == "μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος"
    assert first["highlight"] == "<mark>μῆνιν</mark> <mark>ἄειδε</mark> θεὰ Πηληϊάδεω Ἀχιλῆος"
    assert first["matched_positions"] == [0, 1]
    assert result["folded"] == "μηνιν αειδε"


def test_accented_single_word_finds_iliad_1_1(search: Search) -> None:
    result = search("Πηληϊάδεω", mode="text", limit=50)
    assert "iliad 1.1" in refs(result)
    assert all(hit["score"] == pytest.approx(1.0) for hit in result["hits"][:10])


def test_vector_mode_finds_the_verse_by_its_spelling(search: Search) -> None:
    result = search("μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος", mode="vector", limit=3)
    assert refs(result)[0] == "iliad 1.1"
    assert result["hits"][0]["vector_rank"] == 1 and result["hits"][0]["text_rank"] is None
    assert result["hits"][0]["score"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("μῆνιν ἄειδα θεὰ", "iliad 1.1"),  # ἄειδε
        ("οὐλομένιν μυρίʼ Ἀχαιοῖς", "iliad 1.2"),  # οὐλομένην
        ("ἰφθίμους ψυχὰς Ἄϊδι προΐαψαν", "iliad 1.3"),  # προΐαψεν
        ("ἑλώρια τεῦχε κυνέσσον", "iliad 1.4"),  # κυνέσσιν
        ("ἄνδρα μοι ἔννεπε μοῦσα πολύτροπων", "odyssey 1.1"),  # πολύτροπον
        ("Τροίης ἱερὸν πτολίεθρον ἔπερσαν", "odyssey 1.2"),  # ἔπερσεν
    ],
)
@pytest.mark.parametrize("mode", ["text", "hybrid"])
def test_a_one_letter_typo_still_finds_the_verse_in_the_top_three(
    search: Search, typo: str, expected: str, mode: str
) -> None:
    assert expected in refs(search(typo, mode=mode, limit=3))


@pytest.mark.parametrize(
    "params",
    [
        {"q": "μηνιν αειδε"},
        {"q": "ζζζ"},  # no trigram match at all: text finds nothing, vector always finds some
        {"q": "Πηληϊάδεω Ἀχιλῆος", "limit": 100},
        {"q": "Πηληϊάδεω Ἀχιλῆος", "limit": 20, "offset": 20},
        {"q": "καὶ", "work": "odyssey", "book": 3, "limit": 50},
        {"q": "ἔπεα πτερόεντα", "work": "iliad", "limit": 7, "offset": 3},
    ],
)
def test_hybrid_never_returns_fewer_hits_than_the_better_part(search: Search, params: dict) -> None:
    counts = {mode: search(mode=mode, **params)["count"] for mode in ("text", "vector", "hybrid")}
    assert counts["hybrid"] >= max(counts["text"], counts["vector"])
    assert counts["hybrid"] > 0


def test_hybrid_hits_carry_both_ranks_and_fused_scores(search: Search) -> None:
    hits = search("μηνιν αειδε", mode="hybrid")["hits"]
    first = hits[0]
    assert (first["text_rank"], first["vector_rank"]) == (1, 1)
    assert first["score"] == pytest.approx(2 / 61)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_filters_and_paging(search: Search) -> None:
    everything = search("Πηληϊάδεω Ἀχιλῆος", mode="text", limit=30)
    page = search("Πηληϊάδεω Ἀχιλῆος", mode="text", limit=10, offset=10)
    iliad_book_1 = search("Πηληϊάδεω Ἀχιλῆος", mode="text", work="iliad", book=1, limit=100)

    assert refs(page) == refs(everything)[10:20]
    assert refs(iliad_book_1) and all(r.startswith("iliad 1.") for r in refs(iliad_book_1))
    assert {"odyssey 24.15", "iliad 1.1"} <= set(refs(everything))


# --- literal input -----------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["%", "_", "%%", "\\", "'", '"', "·;"])
@pytest.mark.parametrize("mode", ["text", "vector", "hybrid"])
def test_wildcards_and_quotes_alone_match_nothing(search: Search, q: str, mode: str) -> None:
    result = search(q, mode=mode)
    assert (result["count"], result["hits"]) == (0, [])


@pytest.mark.parametrize("decorated", ["μῆνιν%", "%μῆνιν_", "'μῆνιν'", '"μῆνιν"', "μῆνιν\\", "μῆνιν;"])
def test_wildcards_and_quotes_around_a_word_are_plain_punctuation(search: Search, decorated: str) -> None:
    assert refs(search(decorated, mode="text", limit=20)) == refs(search("μῆνιν", mode="text", limit=20))


def test_sql_in_the_query_is_only_text(client: TestClient, search: Search) -> None:
    result = search("'; DROP TABLE text_segment; --", mode="hybrid")
    # Latin letters, so it is searched as transliterated Greek (app/query_reading.py): still just words
    assert (result["read_as"], result["folded"]) == ("transliteration", "δροπ ταβλε τεξτ σεγμεντ")
    assert client.get("/works").json()[0]["verses"] == 15686


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "Field required"),
        ({"q": ""}, "at least 1 character"),
        ({"q": "   "}, "q must contain something to search for"),
        ({"q": "\u00a0\x1e\ufeff"}, "q must contain something to search for"),  # blank in ECMA and Python
        ({"q": "α" * 257}, "at most 256 characters"),
        ({"q": "μῆνιν", "limit": 0}, "greater than or equal to 1"),
        ({"q": "μῆνιν", "limit": 101}, "less than or equal to 100"),
        ({"q": "μῆνιν", "limit": "ten"}, "valid integer"),
        ({"q": "μῆνιν", "offset": -1}, "greater than or equal to 0"),
        ({"q": "μῆνιν", "mode": "fuzzy"}, "'text', 'vector' or 'hybrid'"),
        ({"q": "μῆνιν", "work": "aeneid"}, "'iliad' or 'odyssey'"),
        ({"q": "μῆνιν", "book": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_search_parameters_are_422_with_a_clear_message(
    client: TestClient, params: dict, words: str
) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == 422
    assert words in str(response.json()["detail"])


def test_a_query_of_exactly_256_characters_is_accepted(search: Search) -> None:
    q = ("μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος " * 8)[:256]
    assert len(q) == 256
    assert refs(search(q, mode="text"))[0] == "iliad 1.1"


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/passages/aeneid/1.1", "'iliad' or 'odyssey'"),
        ("/passages/iliad/1", "ref must be book.line or book.line-line"),
        ("/passages/iliad/a.b", "ref must be book.line or book.line-line"),
        ("/passages/iliad/1.1-", "ref must be book.line or book.line-line"),
        ("/passages/iliad/1.1-2.5", "ref must be book.line or book.line-line"),
        ("/passages/iliad/1.9-3", "the last line comes before the first"),
        ("/passages/iliad/1.1-5000", "at most 1000 lines"),
    ],
)
def test_bad_passage_requests_are_422_with_a_clear_message(client: TestClient, path: str, words: str) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert words in str(response.json()["detail"])


# --- passages and works ------------------------------------------------------------------------


def test_passage_range_in_order(client: TestClient) -> None:
    response = client.get("/passages/iliad/1.1-7")
    assert response.status_code == 200
    body = response.json()
    assert (body["work"], body["ref"]) == ("iliad", "1.1-7")
    assert body["urn"] == "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2:1.1-1.7"
    assert [v["ref"] for v in body["verses"]] == [f"1.{n}" for n in range(1, 8)]
    assert body["verses"][0]["text"] == "μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος"


def test_single_verse_passage(client: TestClient) -> None:
    body = client.get("/passages/odyssey/1.1").json()
    assert body["urn"] == "urn:cts:greekLit:tlg0012.tlg002.perseus-grc2:1.1"
    assert [v["text"] for v in body["verses"]] == ["ἄνδρα μοι ἔννεπε, μοῦσα, πολύτροπον, ὃς μάλα πολλὰ"]


def test_passage_keeps_the_editions_gaps_and_deletions(client: TestClient) -> None:
    gap = client.get("/passages/iliad/9.456-463").json()
    assert [v["line"] for v in gap["verses"]] == [456, 457, 462, 463]
    deleted = client.get("/passages/iliad/8.547-549").json()
    assert [(v["line"], v["deleted"]) for v in deleted["verses"]] == [(547, False), (548, True), (549, False)]


def test_passage_outside_the_edition_is_404(client: TestClient) -> None:
    response = client.get("/passages/iliad/1.900-950")
    assert response.status_code == 404
    assert "no verses 1.900-950 in iliad" in response.json()["detail"]


def test_works_list_books_and_counts(client: TestClient) -> None:
    works = {work["slug"]: work for work in client.get("/works").json()}
    assert set(works) == {"iliad", "odyssey"}
    iliad = works["iliad"]
    assert (iliad["verses"], len(iliad["books"]), iliad["urn"]) == (
        15686,
        24,
        "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2",
    )
    assert iliad["books"][0] == {"book": 1, "verses": 611, "first_line": 1, "last_line": 611}
    assert sum(book["verses"] for book in iliad["books"]) == 15686
    assert works["odyssey"]["verses"] == 12107
    assert (works["odyssey"]["title"], works["odyssey"]["author"], works["odyssey"]["language"]) == (
        "Odyssey",
        "Homer",
        "grc",
    )


def test_openapi_documents_the_endpoints_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/search", "/passages/{work}/{ref}", "/works"} <= set(spec["paths"])
    search_spec = spec["paths"]["/search"]["get"]
    q = next(p for p in search_spec["parameters"] if p["name"] == "q")
    assert q["examples"]["opening"]["value"] == "μηνιν αειδε"
    assert {"422", "503", "504"} <= set(search_spec["responses"])
    assert "example" in spec["components"]["schemas"]["SearchHit"]


# --- database trouble --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/search?q=μηνιν", "/search?q=μηνιν&mode=hybrid", "/passages/iliad/1.1", "/works"]
)
def test_database_down_is_503_json(path: str) -> None:
    with client_for(f"postgresql+psycopg://homer:x@127.0.0.1:{free_port()}/homer") as client:  # no listener
        response = client.get(path)
    assert response.status_code == 503
    assert response.json() == {
        "detail": "database unavailable",
        "request_id": response.headers["X-Request-ID"],
    }


def test_statement_timeout_is_504_json(db_url: str, client: TestClient) -> None:
    with table_locked(db_url, "text_segment"), client_for(db_url, STATEMENT_TIMEOUT_MS="300") as slow:
        responses = [slow.get(path) for path in ("/search?q=μηνιν", "/passages/iliad/1.1", "/works")]
    assert [r.status_code for r in responses] == [504, 504, 504]
    assert responses[0].json()["detail"] == "the query took too long and was cancelled"
    assert responses[0].json()["request_id"] == responses[0].headers["X-Request-ID"]
