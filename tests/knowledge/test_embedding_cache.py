"""The semantic tier's embedding cache: only texts it has not seen are embedded, in one batch."""

import numpy as np

from services.knowledge.semantic import EmbeddingCache


class CountingModel:
    """Stands in for a SentenceTransformer: a vector per text, and a record of each batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def encode(self, texts, **_options):
        self.batches.append(list(texts))
        return np.asarray([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float64)


def test_only_new_texts_are_embedded_and_old_ones_come_back_the_same():
    cache, model = EmbeddingCache(limit=10), CountingModel()
    first = cache.embed("m", model, ["banana", "apple"])
    again = cache.embed("m", model, ["apple", "cherry", "banana"])
    assert model.batches == [["banana", "apple"], ["cherry"]]
    assert again.dtype == np.float32 and np.array_equal(again[[2, 0]], first)
    cache.embed("other model", model, ["apple"])  # another model's vectors are its own
    assert model.batches[-1] == ["apple"]


def test_the_least_recently_used_text_leaves_first():
    cache, model = EmbeddingCache(limit=2), CountingModel()
    cache.embed("m", model, ["a", "b"])
    cache.embed("m", model, ["a"])  # a is fresh again
    cache.embed("m", model, ["c"])  # b goes
    cache.embed("m", model, ["a", "b"])
    assert model.batches[-1] == ["b"]
