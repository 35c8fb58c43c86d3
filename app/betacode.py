"""Beta Code (the TLG/Perseus ASCII encoding of Greek) to precomposed Unicode Greek.

The conversion itself is the `betacode` package's (`betacode.conv.beta_to_uni`): its table
covers every letter, ``*`` capitals with their marks (``*)a`` Ἀ), the marks ``) ( / \\ = + |``
in any order after a letter, upper- or lower-case letters, ``v`` digamma, ``s1``/``s2``/``s3``
and word-final ``s`` as ς, and ``:`` as the ano teleia. Three gaps are filled here:

- ``j`` (and ``J``), the TLG's other final sigma, is read as ``s2``;
- the apostrophe is elision, never a macron: the package reads ``a'``, ``i'``, ``u'`` as
  ᾱ ῑ ῡ, so ``'`` is handed to it as U+2019, which it keeps as the elision mark;
- its output mixes oxia and tonos code points, so the result is NFC, the form of the edition.
"""

from __future__ import annotations

import unicodedata

from betacode.conv import beta_to_uni

_BEFORE = str.maketrans({"j": "s2", "J": "s2", "'": "\u2019"})


def betacode_to_greek(text: str) -> str:
    """The Greek of Beta Code `text` (NFC); what is not Beta Code is kept as it is."""
    return unicodedata.normalize("NFC", beta_to_uni(text.translate(_BEFORE)))
