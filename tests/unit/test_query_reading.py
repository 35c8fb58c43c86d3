"""Reading a query: the detection rule between Greek, Beta Code and transliteration, and its refusals."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pytest

from app.query_reading import QueryReading, ReadAs, UnreadableQuery, check, read_query

# Occurrences of some folds in the poems (as the token table has them).
TEXT = {
    "μηνιν": 12, "αειδε": 10, "αειδη": 1, "θεα": 134, "εκτωρ": 202, "εκτορ": 48, "ανδρα": 143,
    "μοι": 1000, "εννεπε": 9, "μουσα": 5, "και": 5000, "η": 1609, "ε": 80,
}  # fmt: skip


class Counts:
    """A `WordCounts` over TEXT that remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[set[str]] = []

    def __call__(self, words: Collection[str]) -> Mapping[str, int]:
        self.calls.append(set(words))
        return {word: TEXT[word] for word in words if word in TEXT}


def read(q: str) -> tuple[QueryReading, Counts]:
    counts = Counts()
    return read_query(q, counts), counts


@pytest.mark.parametrize("q", ["μῆνιν ἄειδε", "ΜΗΝΙΝ", "µηνιν", "%", "1.1", "'; --", "привет"])
def test_no_latin_letters_is_read_as_typed_without_asking_the_text(q: str) -> None:
    reading, counts = read(q)
    assert reading == QueryReading(ReadAs.greek, q)
    assert counts.calls == []


@pytest.mark.parametrize(
    ("q", "greek"),
    [
        ("mh=nin a)/eide qea/", "μῆνιν ἄειδε θεά"),  # marks after vowels
        ("*(/ektwr", "Ἕκτωρ"),  # * before a letter
        ("*hra", "Ηρα"),
        ("ou) ga/r", "οὐ γάρ"),
        ("qea", "θεα"),  # letters only Beta Code uses: q ...
        ("w(s", "ὡς"),  # ... w
        ("MHNIN QEA", "μηνιν θεα"),
    ],
)
def test_beta_code_marks_or_letters_read_it_as_beta_code(q: str, greek: str) -> None:
    reading, counts = read(q)
    assert reading == QueryReading(ReadAs.betacode, greek)
    assert counts.calls == []


def test_accented_latin_is_transliteration_and_asks_the_text_once() -> None:
    reading, counts = read("mēnin aeide thea")
    assert reading == QueryReading(ReadAs.transliteration, "μηνιν αειδε θεα")
    assert counts.calls == [{"αειδε", "αειδη", "αηιδε", "αηιδη", "θεα", "θηα"}]  # only the open words


def test_accented_latin_without_an_open_word_asks_nothing() -> None:
    reading, counts = read("mēnin")
    assert reading == QueryReading(ReadAs.transliteration, "μηνιν")
    assert counts.calls == []


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("menin aeide thea", QueryReading(ReadAs.transliteration, "μηνιν αειδε θεα")),
        ("Hektor", QueryReading(ReadAs.transliteration, "Εκτωρ")),
        ("mhnin", QueryReading(ReadAs.betacode, "μηνιν")),  # Beta Code without accents
        ("andra moi ennepe mousa", QueryReading(ReadAs.transliteration, "ανδρα μοι εννεπε μουσα")),  # a tie
        ("drop table", QueryReading(ReadAs.transliteration, "δροπ ταβλε")),  # neither is in the text
    ],
)
def test_plain_latin_takes_the_reading_with_more_words_in_the_text(q: str, expected: QueryReading) -> None:
    reading, counts = read(q)
    assert reading == expected
    assert len(counts.calls) == 1


@pytest.mark.parametrize("q", ["μηνιν aeide", "mh=nin ἄειδε", "Ἕκτωρ Hektor", "𝐚θεα"])
def test_greek_and_latin_letters_together_are_refused(q: str) -> None:
    with pytest.raises(UnreadableQuery, match="mixes Greek and Latin letters"):
        check(q)
    with pytest.raises(UnreadableQuery):
        read_query(q, Counts())


def test_beta_code_with_latin_accents_is_refused() -> None:
    with pytest.raises(UnreadableQuery, match="mixes Beta Code marks with accented Latin letters"):
        check("mh=nin ēos")


@pytest.mark.parametrize("q", ["μῆνιν", "mh=nin", "mēnin", "menin)", "a + b", "%"])
def test_one_script_passes_the_check(q: str) -> None:
    check(q)
