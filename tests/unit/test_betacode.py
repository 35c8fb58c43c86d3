"""Beta Code to Greek: the TLG tables, famous words as exact precomposed Greek, the Iliad both ways."""

from __future__ import annotations

import unicodedata

import pytest
from betacode.conv import uni_to_beta

from app.betacode import betacode_to_greek
from app.folding import fold
from app.ingest import DATA_DIR, parse_work

ILIAD = DATA_DIR / "tlg0012.tlg001.perseus-grc2.xml"

LETTERS = {
    "a": "α", "b": "β", "g": "γ", "d": "δ", "e": "ε", "z": "ζ", "h": "η", "q": "θ", "i": "ι",
    "k": "κ", "l": "λ", "m": "μ", "n": "ν", "c": "ξ", "o": "ο", "p": "π", "r": "ρ", "s": "σ",
    "t": "τ", "u": "υ", "f": "φ", "x": "χ", "y": "ψ", "w": "ω", "v": "ϝ",
}  # fmt: skip


@pytest.mark.parametrize(("beta", "greek"), LETTERS.items())
def test_every_letter_in_either_case_and_as_a_capital(beta: str, greek: str) -> None:
    # Alone, then inside a word (so that s is medial), in lower and upper case, and with *.
    for typed in (beta, beta.upper()):
        assert fold(betacode_to_greek(typed)) == fold(greek)
        assert betacode_to_greek(f"a{typed}a") == f"α{greek}α"
    assert betacode_to_greek(f"*{beta}") == greek.upper()


@pytest.mark.parametrize(
    ("beta", "greek"),
    [
        ("a)", "ἀ"),  # smooth breathing
        ("a(", "ἁ"),  # rough breathing
        ("r(", "ῥ"),
        ("a/", "ά"),  # acute: the tonos code point, as NFC has it
        ("a\\", "ὰ"),  # grave
        ("a=", "ᾶ"),  # circumflex
        ("i+", "ϊ"),  # diaeresis
        ("u+/", "ΰ"),
        ("a|", "ᾳ"),  # iota subscript
        ("h=|", "ῇ"),
        ("w)|", "ᾠ"),
        ("a)/", "ἄ"),  # breathing and accent ...
        ("a/)", "ἄ"),  # ... in either order
        ("*)a", "Ἀ"),  # capitals: * before the letter and its marks
        ("*(/e", "Ἕ"),
        ("*)/a|", "ᾌ"),
        ("*(r", "Ῥ"),
        ("*)AXILLEU/S", "Ἀχιλλεύς"),  # upper-case letters are the same letters
    ],
)
def test_breathings_accents_diaeresis_and_iota_subscript_are_precomposed(beta: str, greek: str) -> None:
    converted = betacode_to_greek(beta)
    assert converted == greek
    assert len(converted) == len(greek) and unicodedata.is_normalized("NFC", converted)
    assert fold(converted) == fold(greek)


@pytest.mark.parametrize(
    ("beta", "greek"),
    [
        ("sa", "σα"),  # medial
        ("los", "λος"),  # final at the end of a word ...
        ("lo/gos, kai/", "λόγος, καί"),  # ... before punctuation
        ("s1a", "σα"),  # s1: medial
        ("s2a", "ςα"),  # s2: final, wherever it stands
        ("ja", "ςα"),  # j: final too
        ("loj", "λος"),
        ("s3a", "ϲα"),  # s3: lunate
        ("pa=s' a", "πᾶσ’ α"),  # an elided word keeps its medial sigma
    ],
)
def test_every_sigma_form(beta: str, greek: str) -> None:
    assert betacode_to_greek(beta) == greek
    folded = fold(betacode_to_greek(beta))
    assert folded == fold(greek) and "σ" in folded and not {"ς", "ϲ"} & set(folded)


@pytest.mark.parametrize(
    ("beta", "greek"),
    [
        ("*)axilleu/s", "Ἀχιλλεύς"),
        ("mh=nin", "μῆνιν"),
        ("qea/", "θεά"),
        ("a)/eide", "ἄειδε"),
        ("*phlhi+a/dew", "Πηληϊάδεω"),
        ("w)|dh=|", "ᾠδῇ"),
        ("mh=nin a)/eide qea\\ *phlhi+a/dew *)axilh=os", "μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος"),
        ("a)/ndra moi e)/nnepe, mou=sa, polu/tropon", "ἄνδρα μοι ἔννεπε, μοῦσα, πολύτροπον"),
        ("*(/ektwr", "Ἕκτωρ"),
    ],
)
def test_famous_words_give_the_exact_greek(beta: str, greek: str) -> None:
    assert betacode_to_greek(beta) == greek


def test_apostrophe_is_elision_never_a_macron() -> None:
    # The package alone reads a' as ᾱ (Odyssey 23.283 would come back as γήρᾱ).
    assert betacode_to_greek("gh/ra' u(/po") == "γήρα’ ὕπο"
    assert betacode_to_greek("muri/' *)axaioi=s") == "μυρί’ Ἀχαιοῖς"
    assert fold(betacode_to_greek("d' a)/r")) == "δ αρ"


def test_punctuation_and_what_is_not_beta_code() -> None:
    assert betacode_to_greek("e)/rxomai: kai/;") == "ἔρχομαι· καί;"
    assert betacode_to_greek("1.1 %") == "1.1 %"
    assert fold(betacode_to_greek("a)/r - nu")) == "αρ νυ"  # - becomes a hyphen, a separator


def test_every_verse_of_the_iliad_comes_back_from_beta_code() -> None:
    """Every precomposed letter the edition uses, written in Beta Code by the package, comes back as is."""
    verses = parse_work(ILIAD).verses
    nfc = {v.ref: unicodedata.normalize("NFC", v.text) for v in verses}
    changed = [v.ref for v in verses if betacode_to_greek(uni_to_beta(v.text)) != nfc[v.ref]]
    assert changed == []
