"""Choosing an engine tier by name (KNOWLEDGE_ENGINE)."""

from __future__ import annotations

from services.knowledge.model import Engine, KnowledgeBase


def engine_class(name: str) -> type[Engine]:
    if name == "semantic":
        from services.knowledge.semantic import SemanticEngine  # optional extra: torch

        return SemanticEngine
    from services.knowledge.classical import ClassicalEngine

    return ClassicalEngine


def train_engine(kb: KnowledgeBase, name: str = "classical", model_name: str | None = None) -> Engine:
    """Train the named tier on a knowledge base (blocking CPU work: run it in a thread)."""
    return engine_class(name).train(kb, model_name)
