"""KnowledgeService: the async face of the knowledge engine for the rest of the app.

Loading and training run in a worker thread; matching too, so the event loop never
waits on CPU work.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

from redis.asyncio import Redis

from services.config import Settings
from services.knowledge.classical import ClassicalEngine
from services.knowledge.formats import load_knowledge
from services.knowledge.model import Engine, KnowledgeBase, Match

log = logging.getLogger(__name__)


def kb_version(kb: KnowledgeBase) -> str:
    digest = hashlib.sha256()
    for e in kb.entries:
        digest.update(repr((e.id, e.kind, e.title, e.answer, e.questions, e.tags, e.escalate, e.url)).encode())
    return digest.hexdigest()[:12]


class KnowledgeService:
    def __init__(self, settings: Settings, redis: Redis | None = None, key_prefix: str = "") -> None:
        self.settings = settings
        self.redis = redis
        self.key_prefix = key_prefix
        self.engine: Engine | None = None
        self.kb: KnowledgeBase | None = None
        self.version = ""
        self.trained_at: float | None = None
        self.train_seconds: float | None = None

    async def start(self) -> None:
        kb = await asyncio.to_thread(load_knowledge, self.settings.knowledge_base_path)
        await self._install(kb)

    async def _install(self, kb: KnowledgeBase) -> None:
        started = time.perf_counter()
        engine = await asyncio.to_thread(ClassicalEngine.train, kb)
        self.train_seconds = round(time.perf_counter() - started, 4)
        self.engine, self.kb, self.version = engine, kb, kb_version(kb)
        self.trained_at = time.time()
        log.info("knowledge ready", extra={"entries": len(kb.entries), "version": self.version,
                                           "train_seconds": self.train_seconds})

    async def match(self, text: str, k: int | None = None) -> Match:
        engine = self.engine
        if engine is None:
            raise RuntimeError("knowledge engine not started")
        return await asyncio.to_thread(engine.match, text, k or self.settings.retrieval_top_k)

    def stats(self) -> dict[str, Any]:
        entries = self.kb.entries if self.kb else ()
        return {
            "version": self.version,
            "engine": self.engine.name if self.engine else None,
            "entries": len(entries),
            "intents": sum(e.kind == "intent" for e in entries),
            "passages": sum(e.kind == "passage" for e in entries),
            "trainSeconds": self.train_seconds,
        }

    async def aclose(self) -> None:
        self.engine = None
