"""How a query is read: as Greek, as Beta Code or as Latin transliteration, and the Greek searched.

The rule, in order:

1. Greek and Latin letters together: refused (`UnreadableQuery`).
2. No Latin letters (Greek, or no letters at all): read as typed, `greek`.
3. Beta Code's marks next to letters (``*`` before a letter, ``) ( / \\ = | +`` after a vowel
   or r) or a letter only Beta Code uses (q, w, j, v): `betacode`. With accented Latin
   letters as well (ē, ô …): refused.
4. Accented Latin letters (ē, ō, ê, é …): `transliteration`.
5. Plain Latin letters fit both (``mhnin`` is Beta Code, ``menin`` transliteration): both
   readings are made and the one with more words found in the text wins; a tie goes to
   `transliteration`.

Transliteration leaves e and o open (ε or η, ο or ω); each word takes the spelling the
text holds most often. Both steps ask `WordCounts` (one call per query, and only for a
Latin query), which the caller backs with the corpus: see `app.vocabulary`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from app import transliteration
from app.betacode import betacode_to_greek
from app.folding import fold

WordCounts = Callable[[Collection[str]], Mapping[str, int]]  # folded words → occurrences in the text

_BETACODE_SIGN = re.compile(r"\*[)(/\\=|+]*[a-z]|[aeiouhwr][)(/\\=|+]|[qwjv]", re.IGNORECASE)
_ACCENTED_LATIN = re.compile(r"[A-Za-z][\u0300-\u036f]")  # in NFD


class ReadAs(StrEnum):
    greek = "greek"
    betacode = "betacode"
    transliteration = "transliteration"


@dataclass(frozen=True, slots=True)
class QueryReading:
    """What a query was read as, and the Greek that is searched for it."""

    read_as: ReadAs
    searched: str


class UnreadableQuery(ValueError):
    """A query that mixes scripts or conventions; the message says how to write it."""


def check(q: str) -> None:
    """Raise `UnreadableQuery` if `q` mixes Greek and Latin letters, or Beta Code and Latin accents."""
    greek, latin = _scripts(q)
    if greek and latin:
        raise UnreadableQuery(
            "q mixes Greek and Latin letters: write it all in Greek, or all in Beta Code "
            "(mh=nin a)/eide) or Latin transliteration (menin aeide)"
        )
    if latin and _BETACODE_SIGN.search(q) and _accented_latin(q):
        raise UnreadableQuery(
            "q mixes Beta Code marks with accented Latin letters: write it in Beta Code (mh=nin) "
            "or in transliteration (mēnin), not both"
        )


def read_query(q: str, counts: WordCounts) -> QueryReading:
    """How `q` is read (the rule above) and the Greek to search; `UnreadableQuery` if it can't be."""
    check(q)
    if not _scripts(q)[1]:
        return QueryReading(ReadAs.greek, q)
    if _BETACODE_SIGN.search(q):
        return QueryReading(ReadAs.betacode, betacode_to_greek(q))
    pieces = transliteration.spellings(q)
    if _accented_latin(q):
        open_words = {fold(spelling) for piece in pieces if len(piece) > 1 for spelling in piece}
        return QueryReading(ReadAs.transliteration, transliteration.best(pieces, _ask(counts, open_words)))
    beta = betacode_to_greek(q)
    beta_words = fold(beta).split()
    found = _ask(counts, {fold(spelling) for piece in pieces for spelling in piece} | set(beta_words))
    latin = transliteration.best(pieces, found)
    if _found(beta_words, found) > _found(fold(latin).split(), found):
        return QueryReading(ReadAs.betacode, beta)
    return QueryReading(ReadAs.transliteration, latin)


def _ask(counts: WordCounts, words: set[str]) -> Mapping[str, int]:
    """`counts` of the non-empty `words`, without a call when there are none."""
    words.discard("")
    return counts(words) if words else {}


def _scripts(text: str) -> tuple[bool, bool]:
    """Whether `text` has Greek letters, and whether it has Latin ones (after NFKD, as `fold`)."""
    names = [unicodedata.name(c, "") for c in unicodedata.normalize("NFKD", text) if c.isalpha()]
    return any("GREEK" in name for name in names), any("LATIN" in name for name in names)


def _accented_latin(text: str) -> bool:
    return bool(_ACCENTED_LATIN.search(unicodedata.normalize("NFD", text)))


def _found(words: list[str], counts: Mapping[str, int]) -> int:
    return sum(1 for word in words if counts.get(word, 0) > 0)
