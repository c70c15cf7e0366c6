"""The embedded responder: answers from the knowledge base, needs no key."""

from __future__ import annotations

from services.knowledge.service import KnowledgeService
from services.responders.base import Prompt, Reply, Responder, Source

OUT_OF_SCOPE = "I'm not sure I can answer that one. A member of our team can help."


class LocalResponder(Responder):
    name = "local"
    in_process = True

    def __init__(self, knowledge: KnowledgeService) -> None:
        self.knowledge = knowledge

    async def respond(self, prompt: Prompt) -> Reply:
        match = await self.knowledge.match(prompt.message)
        sources = tuple(
            Source(h.entry.id, h.entry.title, h.score, h.entry.url) for h in match.hits[:1]
        )
        if match.entry is None:
            return Reply(OUT_OF_SCOPE, match.confidence, self.name)
        return Reply(
            text=match.entry.answer, confidence=match.confidence, provider=self.name,
            sources=sources, needs_human=match.entry.escalate,
            human_reason=f"topic {match.entry.title!r} is handled by a person" if match.entry.escalate else None,
        )
