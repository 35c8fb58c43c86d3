"""Marking the words of a verse that match the words of a query (after folding)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from html import escape

from app.folding import tokenize

WORD_MATCH_THRESHOLD = 0.5  # trigram similarity of two folded words that counts as a match


@lru_cache(maxsize=1 << 14)
def trigrams(word: str) -> frozenset[str]:
    """The trigrams of one folded word as pg_trgm forms them (two spaces before, one after)."""
    padded = f"  {word} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def word_similarity(a: str, b: str) -> float:
    """pg_trgm's `similarity` of two single words: shared trigrams over all trigrams."""
    if a == b:
        return 1.0
    first, second = trigrams(a), trigrams(b)
    union = len(first | second)
    return len(first & second) / union if union else 0.0


@dataclass(frozen=True)
class Marked:
    html: str  # the verse, HTML-escaped, with <mark>..</mark> around matching words
    positions: list[int]  # token positions (as in the token table) of those words


def mark(text: str, query_words: list[str]) -> Marked:
    """Mark the words of `text` whose fold equals or closely resembles a folded query word."""
    pieces: list[str] = []
    positions: list[int] = []
    cursor = 0
    for token in tokenize(text):
        if not any(word_similarity(token.fold, word) >= WORD_MATCH_THRESHOLD for word in query_words):
            continue
        positions.append(token.position)
        if token.start < cursor:  # a second piece of a word already marked
            continue
        pieces.append(escape(text[cursor : token.start]))
        pieces.append(f"<mark>{escape(token.surface)}</mark>")
        cursor = token.end
    pieces.append(escape(text[cursor:]))
    return Marked("".join(pieces), positions)
