"""KnowledgeService: the async face of the knowledge engine.

Loading, training and matching run in worker threads, never on the event loop. A new
knowledge base (upload, added or deleted entry) is parsed at once (bad input changes
nothing), trained in the background, and swapped in atomically. With Redis, versions are
stored under `P {kb}:version:<v>`, the serving one is `P {kb}:current` (one hash tag: they
change in one transaction, in one Redis Cluster slot), and each new version
is announced on the `P kb:updates` channel, so every instance sharing the Redis swaps to
it within seconds (a slow poll catches any missed announcement).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import zlib
from collections import OrderedDict
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.config import Settings
from services.errors import EntryNotFound, InvalidKnowledge, KnowledgeConflict
from services.keys import KNOWLEDGE
from services.knowledge.engines import train_engine
from services.knowledge.formats import (
    KnowledgeFormatError,
    parse_faq_csv,
    parse_intents,
    parse_text,
)
from services.knowledge.model import Engine, Entry, KnowledgeBase, Match

log = logging.getLogger(__name__)
POLL_SECONDS = 5.0
MATCH_MEMO = 512  # recent questions whose match is kept (a few hundred KB at most)
SUPERSEDED_TTL = 3600  # seconds a replaced version stays in Redis for instances still catching up


def kb_version(kb: KnowledgeBase) -> str:
    digest = hashlib.sha256(json.dumps([asdict(e) for e in kb.entries], sort_keys=True).encode())
    return digest.hexdigest()[:12]


def dump(kb: KnowledgeBase) -> bytes:
    return zlib.compress(
        json.dumps({"name": kb.name, "entries": [asdict(e) for e in kb.entries]}).encode()
    )


def load(blob: bytes) -> KnowledgeBase:
    data = json.loads(zlib.decompress(blob))
    entries = tuple(
        Entry(**{**e, "questions": tuple(e["questions"]), "tags": tuple(e["tags"])})
        for e in data["entries"]
    )
    return KnowledgeBase(entries, name=data["name"])


def parse_upload(body: Any, content_type: str, fmt: str | None) -> KnowledgeBase:
    """An uploaded knowledge base; InvalidKnowledge (400) names the line and problem."""
    try:
        if isinstance(body, dict):
            return parse_intents(body, "upload")
        text = body.decode() if isinstance(body, bytes) else str(body)
        if "csv" in content_type or fmt == "faq":
            return parse_faq_csv(text, "upload.csv")
        return parse_text(text, "upload.yaml", "yaml")
    except (KnowledgeFormatError, UnicodeDecodeError) as exc:
        raise InvalidKnowledge(str(exc)) from None


def check_servable(kb: KnowledgeBase) -> None:
    """InvalidKnowledge unless the engine can be trained on it and answer something."""
    labelled = {e.id for e in kb.entries if e.questions}
    answerable = {e.id for e in kb.entries if e.questions and "out_of_scope" not in e.tags}
    if len(labelled) < 2 or not answerable:
        raise InvalidKnowledge("a knowledge base needs at least two entries with example questions")


def entry_view(entry: Entry, score: float | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": entry.id,
        "kind": entry.kind,
        "title": entry.title,
        "url": entry.url,
        "answer": entry.answer,
    }
    if score is not None:
        view["score"] = round(score, 4)
    return view


class KnowledgeService:
    def __init__(
        self, settings: Settings, redis: Redis | None = None, key_prefix: str = ""
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.prefix = key_prefix
        self.engine: Engine | None = None
        self.kb: KnowledgeBase | None = None
        self.version = ""
        self.trained_at: float | None = None
        self.train_seconds: float | None = None
        self.pending: str | None = None
        self.last_error: str | None = None
        self._latest: KnowledgeBase | None = None  # the newest accepted, serving or still training
        self._generation = 0  # bumped by every accepted change: the newest one wins
        self._publishing = asyncio.Lock()
        self._unusable: str | None = None  # a stored version this instance could not train
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False
        # (question, k) -> (the engine that matched it, its match): see `match`
        self._matches: OrderedDict[tuple[str, int], tuple[Engine, asyncio.Future[Match]]] = (
            OrderedDict()
        )

    # -- keys ------------------------------------------------------------------------
    @property
    def current_key(self) -> str:
        return f"{self.prefix}{KNOWLEDGE}current"

    @property
    def channel(self) -> str:
        return f"{self.prefix}kb:updates"

    def version_key(self, version: str) -> str:
        return f"{self.prefix}{KNOWLEDGE}version:{version}"

    # -- life ------------------------------------------------------------------------
    async def start(self) -> None:
        """Serve the version stored in Redis if there is one, else the configured file."""
        kb = None
        if self.redis is not None:
            current = await self.redis.get(self.current_key)
            if current:
                blob = await self.redis.get(self.version_key(_text(current)))
                kb = await asyncio.to_thread(load, _bytes(blob)) if blob else None
        if kb is None:
            from services.knowledge.formats import load_knowledge

            kb = await asyncio.to_thread(load_knowledge, self.settings.knowledge_base_path)
        await self._install(kb, await self._train(kb))
        if self.redis is not None:
            self._watcher = asyncio.create_task(self._watch(), name="knowledge-watcher")

    async def aclose(self) -> None:
        self._closing = True  # a client library that swallows the cancellation still stops
        tasks = [*self._tasks, *([self._watcher] if self._watcher else [])]
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: shutting down must never hang on a background task
            await asyncio.wait(tasks, timeout=5)

    # -- reading -----------------------------------------------------------------------
    async def match(self, text: str, k: int | None = None) -> Match:
        """The engine's match for a question, in a worker thread. The same question with the
        same `k` shares one computation while the engine serves (MATCH_MEMO recent ones): a
        message's retrieval starts while the message is being stored, and the responder that
        asks for it next finds it done or on its way; a question asked again is not
        classified twice."""
        engine = self.engine  # one reference: a swap never tears a request
        if engine is None:
            raise RuntimeError("knowledge engine not started")
        key = (text, k or self.settings.retrieval_top_k)
        loop = asyncio.get_running_loop()
        known = self._matches.get(key)
        if known is not None and known[0] is engine and known[1].get_loop() is loop:
            self._matches.move_to_end(key)
            computing = known[1]
        else:
            computing = asyncio.ensure_future(asyncio.to_thread(engine.match, *key))
            self._matches[key] = (engine, computing)
            if len(self._matches) > MATCH_MEMO:
                self._matches.popitem(last=False)

            def forget_failure(done: asyncio.Future[Match]) -> None:
                if (done.cancelled() or done.exception() is not None) and (
                    self._matches.get(key, (None, None))[1] is done
                ):
                    del self._matches[key]

            computing.add_done_callback(forget_failure)
        return await asyncio.shield(computing)  # one caller's cancellation is not the others'

    async def search(self, q: str, k: int = 5) -> dict[str, Any]:
        """What the engine retrieves for a message and why (scores), for admins."""
        match = await self.match(q, k)
        result: dict[str, Any] = {
            "query": q,
            "confidence": round(match.confidence, 4),
            "outOfScope": match.entry is None,
            "hits": [entry_view(h.entry, h.score) for h in match.hits],
            "version": self.version,
            "engine": self.engine.name if self.engine else None,
        }
        if match.entry is not None:
            result["match"] = entry_view(match.entry, match.confidence)
        return result

    def stats(self) -> dict[str, Any]:
        entries = self.kb.entries if self.kb else ()
        trained_at = (
            datetime.fromtimestamp(self.trained_at, UTC).isoformat(timespec="seconds")
            if self.trained_at
            else None
        )
        return {
            "version": self.version,
            "engine": self.engine.name if self.engine else None,
            "name": self.kb.name if self.kb else None,
            "entries": len(entries),
            "intents": sum(e.kind == "intent" for e in entries),
            "faqs": sum(e.kind == "faq" for e in entries),
            "passages": sum(e.kind == "passage" for e in entries),
            "trainedAt": trained_at,
            "trainSeconds": self.train_seconds,
        }

    def status(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "engine": self.engine.name if self.engine else None,
            "stats": self.stats(),
            "pending": self.pending,
            "lastError": self.last_error,
        }

    # -- changing ------------------------------------------------------------------------
    async def replace_upload(
        self, body: Any, *, content_type: str, fmt: str | None = None
    ) -> dict[str, Any]:
        """Parse an upload (intents JSON/YAML or FAQ CSV) off the event loop, then swap it in."""
        return await self.replace(await asyncio.to_thread(parse_upload, body, content_type, fmt))

    async def add_entry(self, data: dict[str, Any]) -> dict[str, Any]:
        kb = self._require_kb()
        entry = Entry(
            id=data["name"],
            kind="intent" if data.get("questions") else "passage",
            title=data.get("title") or data["name"],
            answer=data["answer"],
            questions=tuple(q.strip() for q in data.get("questions", []) if q.strip()),
            tags=tuple(data.get("tags", [])),
            escalate=bool(data.get("escalate", False)),
            url=data.get("url"),
        )
        entries = (*(e for e in kb.entries if e.id != entry.id), entry)
        return await self._change(KnowledgeBase(entries, kb.name))

    async def delete_entry(self, entry_id: str) -> dict[str, Any]:
        kb = self._require_kb()
        if kb.get(entry_id) is None:
            raise EntryNotFound(f"no entry {entry_id!r}")
        return await self._change(
            KnowledgeBase(tuple(e for e in kb.entries if e.id != entry_id), kb.name)
        )

    async def _change(self, kb: KnowledgeBase) -> dict[str, Any]:
        """One entry added or removed: refused with 409 if the result could not serve."""
        try:
            return await self.replace(kb)
        except InvalidKnowledge as exc:
            raise KnowledgeConflict(exc.detail) from None

    async def replace(self, kb: KnowledgeBase) -> dict[str, Any]:
        """Check now, train in the background, then swap here and announce to the others.

        Changes made in quick succession are trained side by side; the newest wins."""
        check_servable(kb)
        self._generation += 1  # no await before this: a concurrent one-entry change builds on kb
        generation, self._latest = self._generation, kb
        version = await asyncio.to_thread(kb_version, kb)
        if generation == self._generation:
            self.pending = version
        task = asyncio.create_task(
            self._publish(kb, version, generation), name=f"knowledge-{version}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return self.status()

    def entry(self, entry_id: str) -> Entry | None:
        """The serving knowledge base's entry with that id, if any."""
        return self.kb.get(entry_id) if self.kb is not None else None

    async def wait_idle(self) -> None:
        """Until background training has finished (for tests and the import command)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- internals ---------------------------------------------------------------------
    def _require_kb(self) -> KnowledgeBase:
        """The base a one-entry change applies to: the newest accepted, even if still training."""
        kb = self._latest or self.kb
        if kb is None:
            raise RuntimeError("knowledge engine not started")
        return kb

    async def _train(self, kb: KnowledgeBase) -> tuple[Engine, float, str]:
        """Engine, training seconds and version, all computed in a worker thread."""

        def work() -> tuple[Engine, float, str]:
            started = time.perf_counter()
            engine = train_engine(kb, self.settings.knowledge_engine, self.settings.semantic_model)
            return engine, round(time.perf_counter() - started, 3), kb_version(kb)

        return await asyncio.to_thread(work)

    async def _install(self, kb: KnowledgeBase, trained: tuple[Engine, float, str]) -> None:
        # no await between these: requests see the old engine or the new one, never a mix
        self.engine, self.train_seconds, self.version = trained
        self._matches.clear()  # the old engine's answers (and the engine itself) go
        self.kb, self.trained_at = kb, time.time()
        log.info(
            "knowledge ready",
            extra={
                "entries": len(kb.entries),
                "version": self.version,
                "engine": self.engine.name,
                "train_seconds": self.train_seconds,
            },
        )

    async def _publish(self, kb: KnowledgeBase, version: str, generation: int) -> None:
        try:
            trained = await self._train(kb)
        except Exception as exc:
            self.last_error = f"training failed: {type(exc).__name__}: {exc}"[:500]
            log.warning(
                "knowledge upload not swapped in",
                extra={"version": version, "error": self.last_error},
            )
            if generation == self._generation:
                self._latest, self.pending = None, None
            return
        blob = await asyncio.to_thread(dump, kb) if self.redis is not None else b""
        async with self._publishing:  # store, announce, install: one change at a time, in order
            if generation != self._generation:  # a newer change was accepted meanwhile: it wins
                log.info(
                    "knowledge version superseded before it served", extra={"version": version}
                )
                return
            if self.redis is not None:
                try:
                    await self._store(version, blob)
                except RedisError as exc:  # not stored, so not served: instances must agree
                    self.last_error = (
                        f"could not store the new version: {type(exc).__name__}: {exc}"[:500]
                    )
                    log.warning(
                        "knowledge upload not swapped in",
                        extra={"version": version, "error": self.last_error},
                    )
                    self._latest, self.pending = None, None
                    return
            await self._install(kb, trained)
            self.last_error = None
            self._latest, self.pending = None, None

    async def _store(self, version: str, blob: bytes) -> None:
        """Make `version` the serving one in Redis and announce it; the one it replaces expires."""
        assert self.redis is not None
        previous = await self.redis.get(self.current_key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.version_key(version), blob)
            pipe.set(self.current_key, version)
            if previous and _text(previous) != version:
                pipe.expire(self.version_key(_text(previous)), SUPERSEDED_TTL)
            await pipe.execute()
        await self.redis.publish(self.channel, version)

    def _is_closing(self) -> bool:
        return self._closing

    async def _watch(self) -> None:
        """Follow versions published by other instances (pub/sub, with a slow poll)."""
        assert self.redis is not None
        while not self._closing:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                await self._catch_up()
                while not self._closing:
                    await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_SECONDS)
                    await self._catch_up()  # on an announcement, or every few seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._is_closing():  # aclose() may have set it while we awaited
                    return
                log.warning("knowledge watcher reconnecting", extra={"error": type(exc).__name__})
                await asyncio.sleep(POLL_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    # redis-py's PubSub.aclose() carries no annotations
                    await asyncio.wait_for(pubsub.aclose(), 2)  # type: ignore[no-untyped-call]

    async def _catch_up(self) -> None:
        """Serve the version Redis says is current, if it is not the one serving here."""
        assert self.redis is not None
        current = await self.redis.get(self.current_key)
        if not current or _text(current) in (self.version, self.pending, self._unusable):
            return
        version = _text(current)
        blob = await self.redis.get(self.version_key(version))
        if blob is None:
            return
        try:
            kb = await asyncio.to_thread(load, _bytes(blob))
            trained = await self._train(kb)
        except Exception as exc:
            self._unusable = version
            log.warning(
                "stored knowledge version not usable here",
                extra={"version": version, "error": f"{type(exc).__name__}: {exc}"[:500]},
            )
            return
        async with self._publishing:
            if await self.redis.get(self.current_key) == current:  # else a newer one: next round
                await self._install(kb, trained)


def _text(value: bytes | str) -> str:
    """A Redis reply as text (the client may or may not decode responses)."""
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
