"""Folding, tokenizing and match marking: the text normal form shared by ingest and queries."""

from __future__ import annotations

import pytest

from app.folding import fold, tokenize
from app.highlight import mark, word_similarity
from app.ingest import DATA_DIR, parse_work

ILIAD = DATA_DIR / "tlg0012.tlg001.perseus-grc2.xml"


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Ἀχιλῆος", "αχιληοσ"),  # breathing, circumflex, capital, final sigma
        ("μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος", "μηνιν αειδε θεα πηληιαδεω αχιληοσ"),  # diaeresis too
        ("ᾠδῇ ᾳ ᾼ", "ωδη α α"),  # iota subscript (ypogegrammeni) and prosgegrammeni dropped
        ("δʼ ἄρ", "δ αρ"),  # elision U+02BC
        ("δ’ ἄρ", "δ αρ"),  # elision U+2019
        ("δ' ἄρ", "δ αρ"),  # typed apostrophe
        ("ἀλλ᾿ ἄγε", "αλλ αγε"),  # psili used as an elision mark
        ("ἡδεῖαν· τῆς", "ηδειαν τησ"),  # ano teleia as U+00B7
        ("ἡδεῖαν\u0387τῆς", "ηδειαν τησ"),  # ... and as U+0387, with no space after it
        ("τίς τʼ ἄρ σφωε θεῶν ἔριδι ξυνέηκε μάχεσθαι;", "τισ τ αρ σφωε θεων εριδι ξυνεηκε μαχεσθαι"),
        ("ποῦ\u037e", "που"),  # Greek question mark U+037E
        ("ΟΔΥΣΣΕΥΣ", "οδυσσευσ"),
        ("ϲοφόϲ", "σοφοσ"),  # lunate sigma
        ("Café  Crème, naïve!", "cafe creme naive"),  # Latin: lower case, accents gone
        ('  a%b_c\\d"e  ', "a b c d e"),  # LIKE wildcards, backslash, quotes: plain separators
        ("— , . ; · !", ""),
        ("", ""),
    ],
)
def test_fold_table(raw: str, folded: str) -> None:
    assert fold(raw) == folded


def test_elided_word_matches_whichever_mark_is_typed() -> None:
    forms = {fold(word) for word in ("ἄλγεʼ", "ἄλγε’", "ἄλγε'", "αλγε", "ΑΛΓΕ᾿")}
    assert forms == {"αλγε"}


def test_fold_is_idempotent_on_the_text() -> None:
    for verse in parse_work(ILIAD, books=[1]).verses:
        once = fold(verse.text)
        assert fold(once) == once
        assert once == once.strip() and "  " not in once


def test_tokens_carry_positions_offsets_and_folds() -> None:
    text = "οὐλομένην, ἣ μυρίʼ Ἀχαιοῖς ἄλγεʼ ἔθηκε,"
    tokens = tokenize(text)
    assert [t.position for t in tokens] == list(range(6))
    assert [t.surface for t in tokens] == ["οὐλομένην", "ἣ", "μυρίʼ", "Ἀχαιοῖς", "ἄλγεʼ", "ἔθηκε"]
    assert [t.fold for t in tokens] == ["ουλομενην", "η", "μυρι", "αχαιοισ", "αλγε", "εθηκε"]
    assert all(text[t.start : t.end] == t.surface for t in tokens)


def test_punctuation_only_pieces_are_not_tokens() -> None:
    assert [t.surface for t in tokenize("— ἔπος· « ἦ »")] == ["ἔπος", "ἦ"]


def test_tokens_fold_to_the_verse_fold_across_the_iliad() -> None:
    verses = parse_work(ILIAD).verses
    mismatched = [
        verse.ref for verse in verses if " ".join(t.fold for t in tokenize(verse.text)) != fold(verse.text)
    ]
    assert mismatched == []


def test_word_similarity_follows_pg_trgm() -> None:
    assert word_similarity("μηνιν", "μηνιν") == 1.0
    # pg_trgm: similarity('μηνισ', 'μηνιν') = 4 shared of 8 distinct trigrams
    assert word_similarity("μηνισ", "μηνιν") == pytest.approx(0.5)
    assert word_similarity("μηνιν", "αχιληοσ") == 0.0


def test_mark_wraps_matching_words_and_escapes_html() -> None:
    marked = mark("μῆνιν ἄειδε <θεὰ> & Πηληϊάδεω", ["μηνιν", "πηληιαδεο"])
    assert marked.html == "<mark>μῆνιν</mark> ἄειδε &lt;θεὰ&gt; &amp; <mark>Πηληϊάδεω</mark>"
    assert marked.positions == [0, 3]


def test_mark_without_a_match_is_the_escaped_verse() -> None:
    marked = mark("ἄνδρα μοι ἔννεπε, <μοῦσα>", ["αχιληοσ"])
    assert marked.html == "ἄνδρα μοι ἔννεπε, &lt;μοῦσα&gt;"
    assert marked.positions == []
