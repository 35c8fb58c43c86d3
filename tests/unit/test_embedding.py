"""The deterministic hashed n-gram embedder (no model, no database)."""

from __future__ import annotations

import math
import subprocess
import sys

from app.embedding import EMBEDDING_DIM, Embedder, HashedNgramEmbedder, default_embedder, word_ngrams


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_default_embedder_fits_the_column_and_the_protocol() -> None:
    embedder = default_embedder()
    assert isinstance(embedder, HashedNgramEmbedder)
    assert embedder.dim == EMBEDDING_DIM == 256
    vectors = embedder.embed(["μῆνιν ἄειδε θεὰ", "ἄνδρα μοι ἔννεπε"])
    assert [len(v) for v in vectors] == [256, 256]
    assert all(math.isclose(math.hypot(*v), 1.0) for v in vectors)


def test_embedder_protocol_is_structural() -> None:
    class Constant:
        dim = 2

        def embed(self, texts: list[str]) -> list[list[float]]:
            return [[1.0, 0.0] for _ in texts]

    embedder: Embedder = Constant()
    assert embedder.embed(["x"]) == [[1.0, 0.0]]


def test_ngrams_mark_word_boundaries() -> None:
    assert word_ngrams("θεα") == [" θε", "θεα", "εα ", " θεα", "θεα "]


def test_vectors_are_stable_across_processes() -> None:
    """blake2b, not Python's salted hash(): another interpreter gives the very same vector."""
    script = "from app.embedding import default_embedder; print(default_embedder().embed(['μῆνιν ἄειδε'])[0])"
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str(default_embedder().embed(["μῆνιν ἄειδε"])[0])
    # and pinned, so that vectors stored earlier stay comparable: the first non-zero buckets of "μηνιν"
    vector = default_embedder().embed(["μῆνιν"])[0]
    assert [index for index, value in enumerate(vector) if value][:5] == [31, 45, 90, 101, 118]


def test_accents_and_case_do_not_change_the_vector() -> None:
    embedder = default_embedder()
    accented, plain = embedder.embed(["Μῆνιν ἄειδε, θεά·", "μηνιν αειδε θεα"])
    assert accented == plain


def test_similar_spelling_is_nearer_than_different_words() -> None:
    query, verse, other = default_embedder().embed(
        ["μηνιν αειδε", "μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος", "ἄνδρα μοι ἔννεπε, μοῦσα, πολύτροπον"]
    )
    assert cosine(query, verse) > 0.5 > cosine(query, other)


def test_text_without_letters_gives_the_zero_vector() -> None:
    assert default_embedder().embed(["·; —"]) == [[0.0] * 256]
