"""The semantic tier's encoder: batched over threads, each text keeps its own vector, in order."""

import numpy as np
import pytest

from services.knowledge.classical import general_out_of_scope
from services.knowledge.semantic import (
    BATCH,
    DEFAULT_MODEL,
    DENSE_WEIGHT,
    Encoder,
    SemanticFeatures,
    load_model,
)

pytestmark = pytest.mark.semantic


def test_batched_vectors_are_each_texts_own_in_the_callers_order():
    model = load_model(DEFAULT_MODEL)
    # varied sentences and lengths, so length-sorted batches reorder them; three batches
    texts = list(general_out_of_scope()[: 2 * BATCH + 7])
    encoder = Encoder(model)
    batched = encoder.encode(texts)
    alone = np.vstack([encoder.encode([text]) for text in texts])
    assert batched.dtype == np.float32 and batched.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    similarity = batched @ alone.T  # int8 activations: close to, not equal to, each alone
    assert (similarity.argmax(axis=1) == np.arange(len(texts))).all()
    assert similarity.diagonal().min() > 0.85


def test_the_embedding_block_weighs_dense_weight_beside_unit_n_gram_blocks():
    features = SemanticFeatures(DEFAULT_MODEL)
    texts = list(general_out_of_scope()[:20])
    # training rows, then query rows (another path: FastTransform and one embedding a call)
    for matrix in (features.fit(texts), features(["is it going to rain", texts[3]])):
        rows = matrix.toarray()
        words = len(features.words.vocabulary_)
        chars = len(features.chars.vocabulary_)
        assert rows.shape[1] == words + chars + 384
        blocks = (rows[:, :words], rows[:, words : words + chars], rows[:, words + chars :])
        norms = [np.linalg.norm(block, axis=1) for block in blocks]
        assert np.allclose(norms[0], 1.0, atol=1e-5) and np.allclose(norms[1], 1.0, atol=1e-5)
        assert np.allclose(norms[2], DENSE_WEIGHT, atol=1e-4)
