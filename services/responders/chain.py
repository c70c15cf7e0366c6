"""The responder chain: walks an ordered list of responders until one answers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from services.responders.base import Delta, Prompt, Reply, Reset, Responder, ResponderError

log = logging.getLogger(__name__)


class AllRespondersFailed(ResponderError):
    pass


class ResponderChain(Responder):
    name = "chain"

    def __init__(self, responders: list[Responder]) -> None:
        self.responders = responders
        self.counts = {r.name: {"successes": 0, "failures": 0, "lastError": None} for r in responders}

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.responders]

    @property
    def needs_grounding(self) -> bool:
        return any(r.name != "local" for r in self.responders)

    async def respond(self, prompt: Prompt) -> Reply:
        reply = None
        async for event in self.stream(prompt):
            if isinstance(event, Reply):
                reply = event
        assert reply is not None
        return reply

    async def stream(self, prompt: Prompt) -> AsyncIterator[Delta | Reset | Reply]:
        reasons = []
        for responder in self.responders:
            try:
                reply = await responder.respond(prompt)
            except ResponderError as exc:
                self.counts[responder.name]["failures"] += 1
                self.counts[responder.name]["lastError"] = exc.reason
                reasons.append(str(exc))
                log.warning("responder failed", extra={"provider": responder.name, "reason": exc.reason})
                continue
            self.counts[responder.name]["successes"] += 1
            yield reply
            return
        raise AllRespondersFailed("chain", "all responders failed", retryable=False, detail="; ".join(reasons))

    def status(self) -> dict[str, Any]:
        return {r.name: {"state": "closed", "configured": True, **self.counts[r.name]} for r in self.responders}

    async def aclose(self) -> None:
        for responder in self.responders:
            await responder.aclose()
