"""Choosing an engine tier by name (KNOWLEDGE_ENGINE)."""

from __future__ import annotations

from services.knowledge.model import Engine, KnowledgeBase


def engine_class(name: str) -> type[Engine]:
    if name == "semantic":
        try:
            import sentence_transformers  # noqa: F401

            from services.knowledge.semantic import SemanticEngine  # optional extra: torch
        except ImportError as exc:
            raise RuntimeError(
                "KNOWLEDGE_ENGINE=semantic needs the semantic extra: "
                "pip install torch==2.13.0 && pip install '.[semantic]'"
            ) from exc
        return SemanticEngine
    from services.knowledge.classical import ClassicalEngine

    return ClassicalEngine


def train_engine(
    kb: KnowledgeBase, name: str = "classical", model_name: str | None = None
) -> Engine:
    """Train the named tier on a knowledge base (blocking CPU work: run it in a thread)."""
    return engine_class(name).train(kb, model_name)
