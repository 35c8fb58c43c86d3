"""Latin transliteration of Greek (Hektor, Akhilleus, mēnin aeide thea) to Greek spellings.

The rules, for upper or lower case (a letter's case is kept; a dropped initial h passes
its capital on):

- ch kh → χ, th → θ, ph → φ, ps → ψ, x ks → ξ, rh → ρ; n before g, k, c, x, ch, kh → γ
  (angelos ἀγγελος, ankhi ἀγχι); double consonants double;
- h at the start of a word is the rough breathing, which folding drops anyway; any other
  lone h is dropped too;
- a → α, i → ι, u y → υ, b β, c k κ, d δ, f φ, g γ, l λ, m μ, n ν, p π, r ρ, s σ (ς at the
  end of a word), t τ, z ζ; q, v, w, j are not transliteration and are kept as they are;
- e, o: with a macron or circumflex (ē ê, ō ô) η, ω; with a breve (ĕ, ŏ) ε, ο; o in the
  diphthong ou ο; otherwise either, since the Latin does not tell (ei is ει or ηϊ, as in
  Peleiadeo Πηληϊάδεω);
- a long vowel before i (āi, ēi, ōi) is ᾳ ῃ ῳ or αι ηι ωι; a diaeresis on the i or u (ōï,
  oü) keeps it apart; other Latin accents are ignored.

`spellings` gives each word's possible Greek spellings, the plain reading (ε, ο, αι …)
first; `best` picks, for every word, the spelling whose fold the corpus holds most often.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Mapping

from app.folding import fold

MAX_AMBIGUOUS = 6  # per word: at most 2**6 spellings; letters past the sixth take the plain reading

_LONG = frozenset("\u0304\u0302")  # macron, circumflex
_SHORT = frozenset("\u0306")  # breve
_DIAERESIS = "\u0308"
_DIGRAPHS = {"ch": "χ", "kh": "χ", "th": "θ", "ph": "φ", "ps": "ψ", "ks": "ξ", "rh": "ρ"}
_NASAL_BEFORE = ("g", "k", "c", "x")  # n before these (so before ch, kh too) is γ
_LETTERS = {
    "a": "α", "b": "β", "c": "κ", "d": "δ", "f": "φ", "g": "γ", "i": "ι", "k": "κ", "l": "λ",
    "m": "μ", "n": "ν", "p": "π", "r": "ρ", "s": "σ", "t": "τ", "u": "υ", "x": "ξ", "y": "υ",
    "z": "ζ",
}  # fmt: skip
_VOWELS = {"e": ("ε", "η"), "o": ("ο", "ω")}
_LONG_VOWEL = {"a": "α", "e": "η", "o": "ω"}
_WITH_IOTA = {"a": ("ᾳ", "αι"), "e": ("ῃ", "ηι"), "o": ("ῳ", "ωι")}  # iota subscript, or a diphthong
# A Latin letter with its combining marks, in NFD; a run of them is a word.
_WORD = re.compile(r"(?:[A-Za-z][\u0300-\u036f]*)+")
_LETTER = re.compile(r"([A-Za-z])([\u0300-\u036f]*)")

Piece = tuple[str, ...]  # a word's Greek spellings, or (text kept as it is,)


def spellings(text: str) -> list[Piece]:
    """`text` cut into words and what lies between: each word with its Greek spellings."""
    text = unicodedata.normalize("NFD", text)
    pieces: list[Piece] = []
    end = 0
    for match in _WORD.finditer(text):
        if match.start() > end:
            pieces.append((unicodedata.normalize("NFC", text[end : match.start()]),))
        pieces.append(_word_spellings(match.group()))
        end = match.end()
    if end < len(text):
        pieces.append((unicodedata.normalize("NFC", text[end:]),))
    return pieces


def best(pieces: list[Piece], counts: Mapping[str, int]) -> str:
    """The Greek of `pieces`, each word spelled as the reading whose fold `counts` finds most.

    A tie (such as no reading in the corpus at all) goes to the earlier, plainer spelling.
    """
    return "".join(max(piece, key=lambda spelling: counts.get(fold(spelling), 0)) for piece in pieces)


def _word_spellings(word: str) -> Piece:
    """Every Greek spelling of one Latin word (NFD), the plain reading first, without repeats."""
    letters = [(base.lower(), base.isupper(), frozenset(marks)) for base, marks in _LETTER.findall(word)]
    units = _units(letters)
    ambiguous = 0
    options: list[tuple[str, ...]] = []
    for choices, upper in units:
        if len(choices) > 1:
            ambiguous += 1
            choices = choices if ambiguous <= MAX_AMBIGUOUS else choices[:1]
        options.append(tuple(choice.title() if upper else choice for choice in choices))
    spelled = ("".join(combination) for combination in itertools.product(*options))
    return tuple(dict.fromkeys(_final_sigma(spelling) for spelling in spelled))


def _units(letters: list[tuple[str, bool, frozenset[str]]]) -> list[tuple[tuple[str, ...], bool]]:
    """The Greek letters of a word, each as its possible spellings and whether it is a capital."""
    units: list[tuple[tuple[str, ...], bool]] = []
    capital_pending = False  # an initial H hands its capital to the next letter
    i = 0
    while i < len(letters):
        base, upper, marks = letters[i]
        upper = upper or capital_pending
        capital_pending = False
        following = letters[i + 1][0] if i + 1 < len(letters) else ""
        opens_ou = base + following == "ou" and _DIAERESIS not in letters[i + 1][2]
        pair = base + following
        if pair in _DIGRAPHS:
            units.append(((_DIGRAPHS[pair],), upper))
            i += 2
            continue
        if base == "h":
            capital_pending = upper and i == 0
        elif base == "n" and following in _NASAL_BEFORE:
            units.append((("γ",), upper))
        elif base in _LONG_VOWEL and marks & _LONG:
            if following == "i" and _DIAERESIS not in letters[i + 1][2]:
                units.append((_WITH_IOTA[base], upper))
                i += 2
                continue
            units.append(((_LONG_VOWEL[base],), upper))
        elif base in _VOWELS:
            short = marks & _SHORT or opens_ou
            units.append((_VOWELS[base][:1] if short else _VOWELS[base], upper))
        else:
            units.append(((_LETTERS.get(base, base),), upper))
        i += 1
    return units


def _final_sigma(word: str) -> str:
    return word[:-1] + "ς" if word.endswith("σ") else word
