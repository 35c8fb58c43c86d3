"""Accent-, case- and punctuation-insensitive folding of Greek (and Latin) text, and a tokenizer.

`fold` is the one normal form shared by ingest (`text_segment.text_fold`, `token.fold`) and
queries, so whatever a person types is compared with the text in the same shape:

- compatibility decomposition (NFKD, which includes NFD's canonical one), then every
  combining mark is dropped: accents, breathings, diaeresis, iota subscript (U+0345), so
  ᾠδῇ folds to ωδη;
- case folded, with final sigma ς as σ (lunate ϲ and the letter-symbols ϐ ϑ ϕ ϖ ϰ ϱ ϵ
  become their plain letters too);
- elision marks are removed, whichever is used: U+02BC, U+2019, the ASCII apostrophe,
  koronis U+1FBD and psili U+1FBF — so ``δʼ``, ``δ’`` and ``δ'`` all fold to ``δ``;
- everything that is not a letter or a digit (punctuation such as · U+00B7, ; U+037E,
  U+0387, dashes, quotes, symbols, ``%`` and ``_``) becomes a space, and white space is
  collapsed and stripped.

`tokenize` splits a verse into surface words (with their character offsets, for marking
them in the original text) whose folds, joined by single spaces, equal `fold` of the verse.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Marks that elide a vowel. Removed before decomposition, because NFKD would turn the
# spacing Greek ones (U+1FBD, U+1FBF) into a space plus a combining mark.
ELISION_MARKS = "\u02bc\u2019'\u1fbd\u1fbf"
_DROP_ELISION = {ord(mark): None for mark in ELISION_MARKS}


class _FoldTable(dict[int, str | None]):
    """A `str.translate` table filled lazily: marks dropped, non-alphanumerics to space."""

    def __missing__(self, codepoint: int) -> str | None:
        char = chr(codepoint)
        category = unicodedata.category(char)
        result: str | None
        if category[0] == "M":
            result = None
        elif category[0] in "LN":
            result = "σ" if char == "ς" else char
        else:
            result = " "
        self[codepoint] = result
        return result


_FOLD_TABLE = _FoldTable()


def fold(text: str) -> str:
    """The search form of `text`: no accents, breathings, case, elision marks or punctuation."""
    text = unicodedata.normalize("NFKD", text.translate(_DROP_ELISION)).translate(_FOLD_TABLE)
    # Marks go before case folding, which would turn the iota subscript into ι; folding may
    # itself make a mark (İ → i + U+0307), hence the second pass.
    text = unicodedata.normalize("NFKD", text.casefold()).translate(_FOLD_TABLE)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a verse: its ordinal position, the text as written and its fold."""

    position: int
    surface: str
    fold: str
    start: int
    end: int


# A word: letters and digits with any combining marks, and elision marks inside or after it.
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_WORD = re.compile(rf"(?:[^\W_]|[{_MARKS}])(?:[^\W_]|[{_MARKS}{ELISION_MARKS}])*")


@lru_cache(maxsize=1 << 16)
def _fold_word(word: str) -> str:
    """`fold`, remembered: the vocabulary of a corpus repeats a lot."""
    return fold(word)


def tokenize(text: str) -> list[Token]:
    """Words of `text` in order, numbered from 0; pieces that fold to nothing are skipped.

    Within a word, a punctuation character that is not an elision mark ends it, so the
    folds of the tokens joined with spaces equal `fold(text)` (for any text whose symbols
    have no compatibility decomposition into letters).
    """
    tokens: list[Token] = []
    for match in _WORD.finditer(text):
        folded = _fold_word(match.group())
        for piece in folded.split(" ") if folded else ():
            # A compatibility character can fold to two words (rare): keep them apart.
            tokens.append(Token(len(tokens), match.group(), piece, match.start(), match.end()))
    return tokens
