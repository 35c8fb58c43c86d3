"""Text embeddings behind a small interface, with a deterministic local default.

`HashedNgramEmbedder` needs no model download: it hashes the character 3- and 4-grams of
each folded word (padded with a space on both sides, so word starts and ends count) into
`dim` buckets with a stable hash (blake2b), each n-gram adding +1 or -1 by another bit of
its hash; each word's part is scaled to about unit length, and the sum is L2-normalised.
It captures spelling closeness, not meaning; a real model can replace it through the
`Embedder` protocol (same `dim` as the column; re-ingest after a change).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

from app.folding import fold

EMBEDDING_DIM = 256  # the width of text_segment.emb
NGRAM_SIZES = (3, 4)  # 3- and 4-grams ranked verses best on held-out phrase queries (2-grams add noise)


class Embedder(Protocol):
    """Anything that turns texts into unit vectors of a fixed width."""

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@lru_cache(maxsize=1 << 17)
def _bucket(gram: str, dim: int) -> tuple[int, float]:
    """The bucket and sign of one n-gram: stable across processes and machines."""
    digest = int.from_bytes(hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest(), "big")
    return digest % dim, 1.0 if (digest >> 63) & 1 else -1.0


def word_ngrams(word: str, sizes: Sequence[int] = NGRAM_SIZES) -> list[str]:
    """Character n-grams of one folded word, padded so that its start and end count."""
    padded = f" {word} "
    return [padded[i : i + size] for size in sizes for i in range(len(padded) - size + 1)]


@lru_cache(maxsize=1 << 16)
def _word_vector(word: str, dim: int, sizes: tuple[int, ...]) -> tuple[tuple[int, float], ...]:
    """A word's n-grams hashed into (bucket, weight) pairs, each weighing 1/sqrt(number of n-grams).

    Scaling by 1/sqrt(n-grams) makes each word count about the same whatever its length, so
    a long formulaic epithet does not outweigh a short, rarer word.
    """
    grams = word_ngrams(word, sizes)
    scale = 1.0 / math.sqrt(len(grams)) if grams else 0.0
    weights: dict[int, float] = {}
    for gram in grams:
        index, sign = _bucket(gram, dim)
        weights[index] = weights.get(index, 0.0) + sign * scale
    return tuple(weights.items())


class HashedNgramEmbedder:
    """Feature hashing of character n-grams of the folded text; deterministic, no model."""

    def __init__(self, dim: int = EMBEDDING_DIM, sizes: Sequence[int] = NGRAM_SIZES) -> None:
        self._dim = dim
        self._sizes = tuple(sizes)

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text; a text without letters or digits gives all zeros."""
        return [self._embed_one(text) for text in texts]

    def _embed_one(self, text: str) -> list[float]:
        vector = [0.0] * self._dim
        for word in fold(text).split():
            for index, weight in _word_vector(word, self._dim, self._sizes):
                vector[index] += weight
        norm = math.hypot(*vector)
        return [value / norm for value in vector] if norm else vector


def default_embedder() -> Embedder:
    """The embedder used at ingest and query time (both must agree)."""
    return HashedNgramEmbedder()
