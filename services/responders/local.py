"""The embedded responder: answers from the knowledge base, needs no key.

The best intent's answer with the engine's calibrated confidence (below the escalation
threshold the conversation is handed over), also where the out-of-scope class is likelier
once that confidence reaches the threshold (`Match.answer`); when no intent fits, the best
article passage (its confidence is its retrieval similarity, so it usually hands over to a
person while showing the passage as a source).
"""

from __future__ import annotations

from services.knowledge.service import KnowledgeService
from services.responders.base import Prompt, Reply, Responder, Source

OUT_OF_SCOPE = "I'm not sure I can answer that one. A member of our team can help."
PASSAGE_MIN_SCORE = 0.2


class LocalResponder(Responder):
    name = "local"
    in_process = True

    def __init__(self, knowledge: KnowledgeService, threshold: float = 0.5) -> None:
        self.knowledge = knowledge
        self.threshold = threshold  # the escalation threshold: below it, a person takes over

    async def respond(self, prompt: Prompt) -> Reply:
        match = await self.knowledge.match(prompt.message)
        entry = match.answer(self.threshold)
        if entry is None:
            passage = next(
                (
                    h
                    for h in match.hits
                    if h.entry.kind == "passage" and h.score >= PASSAGE_MIN_SCORE
                ),
                None,
            )
            if passage is None:
                return Reply(OUT_OF_SCOPE, match.confidence, self.name)
            source = Source(passage.entry.id, passage.entry.title, passage.score, passage.entry.url)
            return Reply(passage.entry.answer, passage.score, self.name, sources=(source,))
        return Reply(
            text=entry.answer,
            confidence=match.confidence,
            provider=self.name,
            sources=(Source(entry.id, entry.title, match.confidence, entry.url),),
            needs_human=entry.escalate,
            human_reason=f"{entry.title} is handled by a person" if entry.escalate else None,
        )
