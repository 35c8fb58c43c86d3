"""Latin transliteration to Greek: each digraph and vowel rule, and names found in the poems' words."""

from __future__ import annotations

from collections import Counter

import pytest

from app.folding import fold, tokenize
from app.ingest import DATA_DIR, parse_work
from app.transliteration import MAX_AMBIGUOUS, best, spellings

POEMS = ("tlg0012.tlg001.perseus-grc2.xml", "tlg0012.tlg002.perseus-grc2.xml")


@pytest.fixture(scope="module")
def vocabulary() -> Counter[str]:
    """How often each fold occurs in both poems: what the token table holds."""
    return Counter(
        token.fold
        for poem in POEMS
        for verse in parse_work(DATA_DIR / poem).verses
        for token in tokenize(verse.text)
    )


def only(word: str) -> tuple[str, ...]:
    [piece] = spellings(word)
    return piece


@pytest.mark.parametrize(
    ("latin", "greek"),
    [
        ("ch", "χ"),
        ("kh", "χ"),
        ("th", "θ"),
        ("ph", "φ"),
        ("ps", "ψ"),
        ("x", "ξ"),
        ("ks", "ξ"),
        ("rh", "ρ"),
        ("rrh", "ρρ"),
        ("ng", "γγ"),  # angelos
        ("nk", "γκ"),
        ("nch", "γχ"),
        ("nkh", "γχ"),
        ("nx", "γξ"),
        ("nd", "νδ"),
        ("c", "κ"),
        ("k", "κ"),
        ("z", "ζ"),
        ("y", "υ"),
        ("u", "υ"),
        ("ll", "λλ"),
        ("ss", "σσ"),
        ("pph", "πφ"),  # Sappho
        ("h", ""),  # a lone h inside a word
    ],
)
def test_consonants_and_digraphs(latin: str, greek: str) -> None:
    assert only(f"a{latin}a") == (f"α{greek}α",)
    assert only(f"A{latin.upper()}A")[0] == f"Α{greek.upper()}Α"


@pytest.mark.parametrize(
    ("latin", "readings"),
    [
        ("te", ("τε", "τη")),  # plain e: either
        ("to", ("το", "τω")),  # plain o: either
        ("tē", ("τη",)),  # macron
        ("tê", ("τη",)),  # circumflex
        ("tĕ", ("τε",)),  # breve
        ("tō", ("τω",)),
        ("tô", ("τω",)),
        ("tŏ", ("το",)),
        ("té", ("τε", "τη")),  # an acute says nothing of the length
        ("tou", ("του",)),  # the diphthong ou
        ("toü", ("του", "τωυ")),  # ... unless a diaeresis parts it
        ("tei", ("τει", "τηι")),  # the other diphthongs leave the vowel open: ει or ηϊ
        ("teu", ("τευ", "τηυ")),
        ("toi", ("τοι", "τωι")),
        ("tōi", ("τῳ", "τωι")),  # long vowel before i: iota subscript, or a diphthong
        ("tēi", ("τῃ", "τηι")),
        ("tāi", ("τᾳ", "ται")),
        ("ta", ("τα",)),
        ("tā", ("τα",)),
        ("ti", ("τι",)),
    ],
)
def test_vowels(latin: str, readings: tuple[str, ...]) -> None:
    assert only(latin) == readings


def test_rough_breathing_final_sigma_and_case() -> None:
    assert only("hippos") == ("ιππος", "ιππως")  # initial h dropped, as folding drops the breathing
    assert only("Hera")[0] == "Ερα"  # its capital passes on
    assert only("Rhodos")[0] == "Ροδος"
    assert only("PHOIBOS")[0] == "ΦΟΙΒΟΣ"
    assert only("Akhilléus") == only("Akhilleus") == ("Αχιλλευς", "Αχιλληυς")  # an acute says nothing


def test_what_lies_between_words_is_kept() -> None:
    assert spellings("d' ar, 12") == [("δ",), ("' ",), ("αρ",), (", 12",)]


def test_a_word_has_a_bounded_number_of_spellings() -> None:
    readings = only("e" * 10)
    assert len(readings) == 2**MAX_AMBIGUOUS
    assert readings[0] == "ε" * 10 and all(reading.endswith("ε" * 4) for reading in readings)


def test_the_plain_reading_wins_when_the_text_has_none() -> None:
    assert best(spellings("drop table"), {}) == "δροπ ταβλε"


@pytest.mark.parametrize(
    ("latin", "greek"),
    [
        ("Hektor", "Εκτωρ"),
        ("Akhilleus", "Αχιλλευς"),
        ("Achilleus", "Αχιλλευς"),
        ("Odysseus", "Οδυσσευς"),
        ("Odusseus", "Οδυσσευς"),
        ("Agamemnon", "Αγαμεμνων"),
        ("menin aeide thea", "μηνιν αειδε θεα"),
        ("mēnin aeide theā", "μηνιν αειδε θεα"),
        ("andra moi ennepe mousa", "ανδρα μοι εννεπε μουσα"),
        ("Pēlēiadeō", "Πηληιαδεω"),
        ("Peleiadeo", "Πηληιαδεω"),
        ("Akhileos", "Αχιληος"),
        ("tou", "του"),
        ("toi", "τοι"),
    ],
)
def test_names_and_verses_are_spelled_as_the_poems_spell_them(
    vocabulary: Counter[str], latin: str, greek: str
) -> None:
    spelled = best(spellings(latin), vocabulary)
    assert spelled == greek
    assert all(vocabulary[word] > 0 for word in fold(spelled).split())
