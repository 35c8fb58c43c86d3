"""Parsing the Perseus TEI editions (no database): books, verses, gaps, deletions, bad files."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from app.catalog import WORKS, WorkSlug
from app.ingest import DATA_DIR, IngestError, parse_work

ILIAD = DATA_DIR / WORKS["iliad"].filename
ODYSSEY = DATA_DIR / WORKS["odyssey"].filename


@pytest.fixture(scope="module")
def iliad():
    return parse_work(ILIAD)


@pytest.fixture(scope="module")
def odyssey():
    return parse_work(ODYSSEY)


def count_l_elements(path: Path) -> int:
    return len(re.findall(r"<l\b", path.read_text(encoding="utf-8")))


def test_the_api_accepts_exactly_the_ingestable_works() -> None:
    assert {slug.value for slug in WorkSlug} == set(WORKS) == {"iliad", "odyssey"}
    assert all((DATA_DIR / spec.filename).is_file() for spec in WORKS.values())


def test_iliad_has_15686_verses_in_24_books(iliad) -> None:
    assert len(iliad.verses) == 15686 == count_l_elements(ILIAD)
    assert iliad.books() == list(range(1, 25))
    assert iliad.urn == WORKS["iliad"].urn


def test_iliad_book_one_has_611_verses(iliad) -> None:
    book_one = [v for v in iliad.verses if v.book == 1]
    assert len(book_one) == 611
    assert [v.line for v in book_one] == list(range(1, 612))
    assert len(parse_work(ILIAD, books=range(1, 2)).verses) == 611


def test_odyssey_has_every_l_element(odyssey) -> None:
    assert len(odyssey.verses) == count_l_elements(ODYSSEY) == 12107
    assert odyssey.books() == list(range(1, 25))  # subtype="book", lower case, also counts
    assert odyssey.urn == WORKS["odyssey"].urn


def test_first_verse_keeps_the_text_after_its_milestone(iliad) -> None:
    first = iliad.verses[0]
    assert (first.ref, first.text, first.deleted) == ("1.1", "μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος", False)


def test_verses_inside_nested_quotations_are_kept(iliad) -> None:
    by_ref = {v.ref: v for v in iliad.verses}
    assert by_ref["1.17"].text == "Ἀτρεΐδαι τε καὶ ἄλλοι ἐϋκνήμιδες Ἀχαιοί,"  # inside <q>
    assert by_ref["1.18"].text.startswith("ὑμῖν μὲν θεοὶ δοῖεν")


def test_line_numbers_are_the_editions_with_gaps_left_as_gaps(iliad) -> None:
    refs = {v.ref for v in iliad.verses}
    assert {"9.457", "9.462", "11.542", "11.544"} <= refs
    assert not {"9.458", "9.459", "9.460", "9.461", "11.543", "14.269"} & refs
    assert max(Counter((v.book, v.line) for v in iliad.verses).values()) == 1


def test_deleted_verses_are_kept_and_marked(iliad, odyssey) -> None:
    deleted = [v for v in iliad.verses if v.deleted]
    assert [v.ref for v in deleted] == ["8.548", "8.550", "8.551", "8.552"]
    assert deleted[0].text == "ἔρδον δ’ ἀθανάτοισι τεληέσσας ἑκατόμβας"  # U+2019 as printed
    assert not any(v.deleted for v in odyssey.verses)


def test_verse_text_is_clean_nfc(iliad) -> None:
    for verse in iliad.verses:
        assert verse.text and verse.text == verse.text.strip()
        assert "  " not in verse.text and "\n" not in verse.text
        assert unicodedata.is_normalized("NFC", verse.text)


def test_truncated_file_names_file_line_and_column(tmp_path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(ILIAD.read_bytes()[:200_000])
    with pytest.raises(IngestError, match=r"broken\.xml: malformed XML at line \d+, column \d+"):
        parse_work(broken)


def test_missing_file_is_an_ingest_error(tmp_path) -> None:
    with pytest.raises(IngestError, match=r"nope\.xml: cannot read file"):
        parse_work(tmp_path / "nope.xml")


def tei(body: str) -> str:
    return (
        '<TEI xmlns="http://www.tei-c.org/ns/1.0"><text><body>'
        f'<div type="edition" n="urn:x">{body}</div></body></text></TEI>'
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('<div type="textpart" subtype="book" n="1"><l n="1a">x</l></div>', "n='1a' is not an integer"),
        ('<div type="textpart" subtype="book" n="one"><l n="1">x</l></div>', "book number n='one'"),
        ('<div type="textpart" subtype="book" n="1"><l n="1">x</l><l n="1">y</l></div>', "1.1 appears twice"),
        ('<l n="1">x</l>', "outside any book"),
        ("<p>prose</p>", "no verses"),
    ],
)
def test_unexpected_structure_is_an_ingest_error(tmp_path, body: str, message: str) -> None:
    path = tmp_path / "odd.xml"
    path.write_text(tei(body), encoding="utf-8")
    with pytest.raises(IngestError, match=re.escape(message)):
        parse_work(path)


def test_del_milestone_and_note_inside_a_line(tmp_path) -> None:
    path = tmp_path / "small.xml"
    path.write_text(
        tei(
            '<div type="textpart" subtype="Book" n="2">'
            '<l n="5"><milestone unit="para"/>ἀλλʼ <note>editor</note>ἄγε</l>'
            '<l n="7"><del>οὐδʼ ἔθελον</del></l>'
            '<del><l n="9">καὶ Πρίαμος</l></del>'
            '<l n="10">τὸν <del>δʼ</del> ἄρα</l>'
            "</div>"
        ),
        encoding="utf-8",
    )
    verses = parse_work(path).verses
    assert [(v.ref, v.text, v.deleted) for v in verses] == [
        ("2.5", "ἀλλʼ ἄγε", False),
        ("2.7", "οὐδʼ ἔθελον", True),
        ("2.9", "καὶ Πρίαμος", True),
        ("2.10", "τὸν δʼ ἄρα", False),  # only a word is struck: the verse stands
    ]


def test_books_filter_and_missing_books(iliad) -> None:
    some = parse_work(ILIAD, books=range(2, 4))
    assert some.books() == [2, 3]
    assert len(some.verses) == sum(1 for v in iliad.verses if v.book in (2, 3))
    with pytest.raises(IngestError, match=re.escape("no book(s) 25, 26")):
        parse_work(ILIAD, books=range(24, 27))
