"""Agent assist over REST: the handoff summary, reply suggestions and knowledge proposals
(services/assist/)."""

from __future__ import annotations

from typing import Any

from handlers import container, ok
from handlers.auth import current_agent


async def get_suggestions(sessionId: str):
    return ok({"suggestions": await container().suggestions.for_session(sessionId)})


async def propose(sessionId: str, body: dict[str, Any]):
    proposal = await container().proposals.propose(
        sessionId,
        current_agent(),
        body["messageId"],
        question=body.get("question"),
        answer=body.get("answer"),
    )
    return ok({"proposal": proposal}, 201)


async def list_proposals(status: str | None = None):
    return ok({"proposals": await container().proposals.find(status)})


async def accept_proposal(proposalId: str, body: dict[str, Any] | None = None):
    return ok(await container().proposals.accept(proposalId, body or {}), 202)


async def reject_proposal(proposalId: str):
    return ok({"proposal": await container().proposals.reject(proposalId)})
