"""/search read as Greek, Beta Code or Latin transliteration, on the real database with both works loaded."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, pool

from app.folding import fold
from app.vocabulary import word_counts
from tests.support.app import Search, refs

ILIAD_1_1 = "μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος"


@pytest.mark.parametrize(
    ("q", "read_as", "searched"),
    [
        ("mh=nin a)/eide qea/", "betacode", "μῆνιν ἄειδε θεά"),
        ("menin aeide thea", "transliteration", "μηνιν αειδε θεα"),
        ("mēnin aeide thea", "transliteration", "μηνιν αειδε θεα"),
        ("MENIN AEIDE THEA", "transliteration", "ΜΗΝΙΝ ΑΕΙΔΕ ΘΕΑ"),
        ("mhnin aeide qea", "betacode", "μηνιν αειδε θεα"),  # Beta Code without accents
    ],
)
def test_iliad_1_1_is_first_from_beta_code_and_transliteration(
    search: Search, q: str, read_as: str, searched: str
) -> None:
    result = search(q, mode="text")
    assert (result["query"], result["read_as"], result["searched"]) == (q, read_as, searched)
    assert result["folded"] == "μηνιν αειδε θεα"
    first = result["hits"][0]
    assert (first["work"], first["ref"], first["text"]) == ("iliad", "1.1", ILIAD_1_1)
    assert first["highlight"] == "<mark>μῆνιν</mark> <mark>ἄειδε</mark> <mark>θεὰ</mark> Πηληϊάδεω Ἀχιλῆος"


@pytest.mark.parametrize(
    ("q", "read_as", "searched"),
    [
        ("a)/ndra moi e)/nnepe", "betacode", "ἄνδρα μοι ἔννεπε"),
        ("andra moi ennepe mousa", "transliteration", "ανδρα μοι εννεπε μουσα"),
    ],
)
def test_odyssey_1_1_is_first_from_beta_code_and_transliteration(
    search: Search, q: str, read_as: str, searched: str
) -> None:
    result = search(q, mode="text")
    assert (result["read_as"], result["searched"]) == (read_as, searched)
    assert refs(result)[0] == "odyssey 1.1"


@pytest.mark.parametrize(("q", "read_as"), [("Hektor", "transliteration"), ("*(/ektwr", "betacode")])
def test_hector_is_found_from_either_form(search: Search, q: str, read_as: str) -> None:
    result = search(q, mode="text", limit=20)
    assert result["read_as"] == read_as and result["folded"] == "εκτωρ"
    assert result["count"] == 20
    for hit in result["hits"]:  # each verse names him: Ἕκτωρ is among its marked words
        assert hit["score"] == pytest.approx(1.0)
        assert "<mark>Ἕκτωρ</mark>" in hit["highlight"], hit["text"]


def test_hector_in_greek_beta_code_and_latin_gives_the_same_hits(search: Search) -> None:
    pages = [refs(search(q, mode="text", limit=30)) for q in ("Ἕκτωρ", "*(/ektwr", "Hektor", "Héktōr")]
    assert pages[0] and all(page == pages[0] for page in pages)


@pytest.mark.parametrize("mode", ["text", "vector", "hybrid"])
@pytest.mark.parametrize(
    ("q", "read_as"),
    [
        ("mh=nin a)/eide qea\\ *phlhi+a/dew *)axilh=os", "betacode"),
        ("menin aeide thea Peleiadeo Akhileos", "transliteration"),
    ],
)
def test_every_mode_searches_the_greek_of_the_reading(
    search: Search, mode: str, q: str, read_as: str
) -> None:
    result = search(q, mode=mode, limit=3)
    assert (result["read_as"], result["mode"]) == (read_as, mode)
    assert result["folded"] == fold(ILIAD_1_1)
    first = result["hits"][0]
    assert (first["work"], first["ref"]) == ("iliad", "1.1")
    if mode == "vector":  # the embedder was given the Greek: the verse's own vector
        assert first["score"] == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["text", "vector", "hybrid"])
def test_a_greek_query_is_read_as_greek(search: Search, mode: str) -> None:
    result = search("Μῆνιν ἄειδε", mode=mode)
    assert (result["read_as"], result["searched"], result["folded"]) == (
        "greek",
        "Μῆνιν ἄειδε",
        "μηνιν αειδε",
    )
    assert refs(result)[0] == "iliad 1.1"


@pytest.mark.parametrize(
    ("q", "words"),
    [
        ("μηνιν aeide", "q mixes Greek and Latin letters"),
        ("Ἕκτωρ Hektor", "q mixes Greek and Latin letters"),
        ("mh=nin ēos", "q mixes Beta Code marks with accented Latin letters"),
    ],
)
@pytest.mark.parametrize("mode", ["text", "vector", "hybrid"])
def test_mixed_queries_are_422_with_a_clear_message(
    client: TestClient, q: str, words: str, mode: str
) -> None:
    response = client.get("/search", params={"q": q, "mode": mode})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "q"] and words in error["msg"]


def test_openapi_documents_the_readings(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    q = next(p for p in spec["paths"]["/search"]["get"]["parameters"] if p["name"] == "q")
    assert q["examples"]["betacode"]["value"] == "mh=nin a)/eide qea/"
    assert q["examples"]["transliteration"]["value"] == "menin aeide thea"
    schemas = spec["components"]["schemas"]
    assert schemas["ReadAs"]["enum"] == ["greek", "betacode", "transliteration"]
    response = schemas["SearchResponse"]
    assert {"read_as", "searched"} <= set(response["required"])
    assert "Beta Code" in response["properties"]["read_as"]["description"]
    assert response["example"]["read_as"] == "betacode"


def test_word_counts_are_the_token_tables(db_url: str, client: TestClient) -> None:
    engine = create_engine(db_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            counts = word_counts(conn, {"εκτωρ", "εκτορ", "ηκτωρ", "μηνιν"})
            assert word_counts(conn, set()) == {}
    finally:
        engine.dispose()
    assert counts == {"εκτωρ": 202, "εκτορ": 48, "μηνιν": 12}  # as tokenize counts them in the poems


def test_a_query_of_256_characters_of_open_vowels_is_spelled_word_by_word(search: Search) -> None:
    q = ("Odysseos Telemakhoio Penelopeies " * 8)[:256]  # 59 words, 3 to 5 open e/o each
    result = search(q, mode="hybrid", limit=3)
    assert result["read_as"] == "transliteration"
    assert result["searched"].startswith("Οδυσσηος Τηλεμαχοιο Πηνελοπειης Οδυσσηος")
    assert result["count"] == 3
