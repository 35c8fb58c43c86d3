"""Perseus TEI editions read into verses, as the edition numbers them. Pure: no database.

`parse_work(path)` returns the verses of one file in document order, or raises IngestError when
the file is missing, malformed or unexpected.
"""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
TEI = "{http://www.tei-c.org/ns/1.0}"


class IngestError(Exception):
    """The input cannot be ingested (missing, malformed or unexpected file); nothing was written."""


@dataclass(frozen=True)
class Verse:
    book: int
    line: int
    text: str
    deleted: bool

    @property
    def ref(self) -> str:
        return f"{self.book}.{self.line}"


@dataclass(frozen=True)
class ParsedWork:
    path: Path
    urn: str | None  # the edition's own URN, from <div type="edition" n=..>
    verses: list[Verse]

    def books(self) -> list[int]:
        return sorted({verse.book for verse in self.verses})


def parse_work(path: Path | str, books: Collection[int] | None = None) -> ParsedWork:
    """The verses of one Perseus TEI file, in document order; IngestError if it is unusable."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        raise IngestError(f"{path}: malformed XML at line {line}, column {column}: {exc.msg}") from None
    except OSError as exc:
        raise IngestError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    body = root.find(f"{TEI}text/{TEI}body")
    if body is None:
        raise IngestError(f"{path}: not a TEI text: no <text><body> in the {TEI}TEI namespace")
    edition = body.find(f"{TEI}div[@type='edition']")
    verses: list[Verse] = []
    _collect(body, path, None, False, verses)
    if not verses:
        raise IngestError(f"{path}: no verses (<l n=..> inside a book <div>) found")
    _check_unique(path, verses)
    if books is not None:
        wanted = set(books)
        missing = sorted(wanted - {verse.book for verse in verses})
        if missing:
            raise IngestError(f"{path}: no book(s) {', '.join(map(str, missing))} in this edition")
        verses = [verse for verse in verses if verse.book in wanted]
    return ParsedWork(path, edition.get("n") if edition is not None else None, verses)


def _collect(element: ET.Element, path: Path, book: int | None, in_del: bool, out: list[Verse]) -> None:
    """Walk the body: book divs set the book, <l> elements become verses."""
    for child in element:
        tag = child.tag
        if (
            tag == f"{TEI}div"
            and child.get("type") == "textpart"
            and child.get("subtype", "").lower() == "book"
        ):
            _collect(child, path, _number(path, child, "book"), in_del, out)
        elif tag == f"{TEI}l":
            if book is None:
                raise IngestError(f"{path}: verse n={child.get('n')!r} outside any book <div>")
            full, kept = _verse_text(child)
            deleted = in_del or (bool(full) and not kept)
            out.append(Verse(book, _number(path, child, f"line in book {book}"), full, deleted))
        elif tag != f"{TEI}note":
            _collect(child, path, book, in_del or tag == f"{TEI}del", out)


def _verse_text(verse: ET.Element) -> tuple[str, str]:
    """(all text, text outside <del>) of a verse: NFC, white space collapsed, notes left out."""
    full: list[str] = []
    kept: list[str] = []

    def walk(element: ET.Element, deleted: bool) -> None:
        if element.text:
            full.append(element.text)
            if not deleted:
                kept.append(element.text)
        for child in element:
            if child.tag != f"{TEI}note":
                walk(child, deleted or child.tag == f"{TEI}del")
            if child.tail:  # the tail of a <milestone/> is verse text
                full.append(child.tail)
                if not deleted:
                    kept.append(child.tail)

    walk(verse, False)
    return _clean("".join(full)), _clean("".join(kept))


def _clean(raw: str) -> str:
    return unicodedata.normalize("NFC", " ".join(raw.split()))


def _number(path: Path, element: ET.Element, what: str) -> int:
    value = element.get("n", "")
    try:
        return int(value)
    except ValueError:
        raise IngestError(f"{path}: {what} number n={value!r} is not an integer") from None


def _check_unique(path: Path, verses: Sequence[Verse]) -> None:
    seen: set[tuple[int, int]] = set()
    for verse in verses:
        key = (verse.book, verse.line)
        if key in seen:
            raise IngestError(f"{path}: verse {verse.ref} appears twice")
        seen.add(key)


def book_range(value: str) -> range:
    """'3' or '1-3' as a range of book numbers; ValueError (its message for the user) if malformed."""
    first, _, last = value.partition("-")
    if not first.isdigit() or not (last or first).isdigit():
        raise ValueError(f"books must look like 3 or 1-3, not {value!r}")
    start, stop = int(first), int(last or first)
    if start < 1 or stop < start:
        raise ValueError(f"books {value!r}: need 1 <= first <= last")
    return range(start, stop + 1)
