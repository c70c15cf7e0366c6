"""Knowledge gaps from agents: a reply an agent wrote becomes a proposed knowledge entry
(the question from the customer's message before it, the answer from the agent's), which
an admin accepts into the knowledge base (KnowledgeService.add_entry, the admin API's own
path) or rejects.

    P {proposals}:proposal:<id>  hash  data (sealed: question, answer, sessionId, messageId,
                                       agent, entryId once accepted), status
                                       (open|accepted|rejected), createdAt, sessionId (for
                                       erasure, as tickets keep theirs)
    P {proposals}:index          zset  proposal id -> createdAt (ms), newest last

Privacy (services/privacy.py): erasing a session deletes the proposals made from it, and the
retention sweep deletes proposals older than TRANSCRIPT_RETENTION_DAYS (an accepted one's
knowledge entry stays: it is the team's text now).

One hash tag: a proposal and its index entry are written in one transaction, which on Redis
Cluster must stay within one slot.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Protocol

from redis.asyncio import Redis

from services.conversations import Actor
from services.errors import DomainError
from services.keys import PROPOSALS
from services.sessions import SessionManager, iso, new_id
from services.store import guarded, now_ms, raw, text

STATUSES = ("open", "accepted", "rejected")
BATCH = 200


class ProposalNotFound(DomainError):
    status, code, title = 404, "PROPOSAL_NOT_FOUND", "Proposal not found"


class ProposalClosed(DomainError):
    status, code, title = 409, "PROPOSAL_CLOSED", "The proposal was already decided"


class ReplyNotFound(DomainError):
    status, code, title = 404, "REPLY_NOT_FOUND", "No such agent reply in this conversation"


class KnowledgeAdmin(Protocol):
    async def add_entry(self, data: dict[str, Any]) -> dict[str, Any]: ...


def entry_name(proposal_id: str, question: str) -> str:
    """A readable, unique intent name: a slug of the question and the proposal's id."""
    slug = "_".join(re.findall(r"[a-z0-9]+", question.lower())[:6])[:60]
    return f"{slug or 'proposal'}_{proposal_id[:6]}"


class Proposals:
    def __init__(
        self, redis: Redis, prefix: str, *, sessions: SessionManager, knowledge: KnowledgeAdmin
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.sessions = sessions
        self.knowledge = knowledge

    def _key(self, proposal_id: str) -> str:
        return f"{self.prefix}{PROPOSALS}proposal:{proposal_id}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}{PROPOSALS}index"

    async def propose(
        self,
        session_id: str,
        actor: Actor,
        message_id: str,
        *,
        question: str | None = None,
        answer: str | None = None,
    ) -> dict[str, Any]:
        """A proposal from the agent reply `message_id` of the conversation."""
        transcript = await self.sessions.transcript(session_id)
        at = next(
            (
                i
                for i, e in enumerate(transcript)
                if e.get("id") == message_id and e.get("role") == "agent"
            ),
            None,
        )
        if at is None:
            raise ReplyNotFound(f"no agent reply {message_id} in this conversation")
        asked = next((e for e in reversed(transcript[:at]) if e.get("role") == "user"), None)
        question = (question or (asked or {}).get("content") or "").strip()
        if not question:
            raise ReplyNotFound("no customer message before that reply: give the question")
        proposal_id = new_id(9)
        data = {
            "question": question,
            "answer": (answer or transcript[at]["content"]).strip(),
            "sessionId": session_id,
            "messageId": message_id,
            "agent": {"id": actor.id, "name": actor.name},
            "entryId": None,
        }
        created = now_ms()
        await self._save(proposal_id, data, "open", created, new=True)
        return self._view(proposal_id, data, "open", created)

    async def accept(self, proposal_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Into the knowledge base (through the admin API's add_entry); `changes` may set
        name, title, questions (besides the customer's) and answer. The knowledge status."""
        data, status, created = await self._load(proposal_id)
        if status != "open":
            raise ProposalClosed(f"proposal {proposal_id} is {status}")
        answer = changes.get("answer") or data["answer"]
        questions = list(dict.fromkeys([data["question"], *changes.get("questions", [])]))
        name = changes.get("name") or entry_name(proposal_id, data["question"])
        entry = {"name": name, "questions": questions, "answer": answer, "tags": ["proposal"]}
        if changes.get("title"):
            entry["title"] = changes["title"]
        knowledge = await self.knowledge.add_entry(entry)
        data = {**data, "answer": answer, "entryId": name}
        await self._save(proposal_id, data, "accepted", created)
        return {
            "proposal": self._view(proposal_id, data, "accepted", created),
            "knowledge": knowledge,
        }

    async def reject(self, proposal_id: str) -> dict[str, Any]:
        data, status, created = await self._load(proposal_id)
        if status != "open":
            raise ProposalClosed(f"proposal {proposal_id} is {status}")
        await self._save(proposal_id, data, "rejected", created)
        return self._view(proposal_id, data, "rejected", created)

    async def get(self, proposal_id: str) -> dict[str, Any]:
        return self._view(proposal_id, *await self._load(proposal_id))

    async def find(self, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Newest first."""
        ids = [text(i) for i in await self._ids(limit)]
        found = [await self.get(i) for i in ids]
        return [p for p in found if status is None or p["status"] == status]

    # -- privacy -------------------------------------------------------------------------
    @guarded
    async def erase_sessions(self, session_ids: Collection[str]) -> int:
        """Delete every proposal made from one of these sessions; how many."""
        wanted = set(session_ids)
        ids = [text(i) for i in await self.redis.zrange(self._index, 0, -1)]
        doomed = []
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            async with self.redis.pipeline(transaction=False) as pipe:
                for proposal_id in chunk:
                    pipe.hmget(self._key(proposal_id), ["sessionId", "data"])
                rows = await pipe.execute()
            for proposal_id, (sid, sealed) in zip(chunk, rows, strict=True):
                if sid is None and sealed is not None:  # made before sessionId was kept plain
                    data = self.sessions.open_field(proposal_id, "proposal", raw(sealed))
                    sid = data.get("sessionId") if isinstance(data, dict) else None
                if sid is not None and text(sid) in wanted:
                    doomed.append(proposal_id)
        await self._delete(doomed)
        return len(doomed)

    @guarded
    async def drop_older(self, cutoff: int) -> int:
        """Delete the proposals created before `cutoff` (ms); how many."""
        old = [text(i) for i in await self.redis.zrangebyscore(self._index, "-inf", cutoff)]
        await self._delete(old)
        return len(old)

    async def _delete(self, proposal_ids: list[str]) -> None:
        for start in range(0, len(proposal_ids), BATCH):
            chunk = proposal_ids[start : start + BATCH]
            async with self.redis.pipeline(transaction=True) as pipe:  # one slot: {proposals}
                pipe.delete(*(self._key(i) for i in chunk))
                pipe.zrem(self._index, *chunk)
                await pipe.execute()

    # -- storage -------------------------------------------------------------------------
    @guarded
    async def _ids(self, limit: int) -> list[Any]:
        return list(await self.redis.zrevrange(self._index, 0, limit - 1))

    @guarded
    async def _save(
        self, proposal_id: str, data: dict[str, Any], status: str, created: int, new: bool = False
    ) -> None:
        sealed = self.sessions.seal_field(proposal_id, "proposal", data)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key(proposal_id),
                mapping={
                    "data": sealed,
                    "status": status,
                    "createdAt": created,
                    "sessionId": data["sessionId"],
                },
            )
            if new:
                pipe.zadd(self._index, {proposal_id: created})
            await pipe.execute()

    @guarded
    async def _load(self, proposal_id: str) -> tuple[dict[str, Any], str, int]:
        reply = await self.redis.hgetall(self._key(proposal_id))
        if not reply:
            raise ProposalNotFound(f"no proposal {proposal_id}")
        fields = {text(k): raw(v) for k, v in reply.items()}
        data = self.sessions.open_field(proposal_id, "proposal", fields["data"])
        if data is None:
            raise ProposalNotFound(f"proposal {proposal_id} cannot be read")
        return data, fields["status"].decode(), int(fields["createdAt"])

    @staticmethod
    def _view(proposal_id: str, data: dict[str, Any], status: str, created: int) -> dict[str, Any]:
        return {
            "id": proposal_id,
            "status": status,
            "createdAt": iso(created),
            "question": data["question"],
            "answer": data["answer"],
            "sessionId": data["sessionId"],
            "messageId": data["messageId"],
            "agent": data["agent"],
            "entryId": data.get("entryId"),
        }
