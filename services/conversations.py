"""The conversation lifecycle: one state machine, each step one atomic Redis script.

    active ──escalate──▶ escalated ──claim──▶ assigned ──resolve──▶ resolved
      ▲                    ▲    │                 │  │                 │
      │                    │    └────resolve──────┼──┼────────────────▶│
      │                    └─────release──────────┘  │                 │
      ├───────────────────────handback───────────────┘                 │
      └──────────────────────reopen (the customer writes again)────────┘
    assigned ──transfer──▶ assigned (another agent)

Every step is checked against the current state (and holder) inside Redis, written to
the transcript as a `system` entry, and pushed to the customer's room and to agents.
A step not allowed from the current state is a TransitionRefused (409) naming the state
and holder; a step on someone else's conversation is Forbidden (403) unless by an admin.
Handback and reopen start a new episode: the bot's context starts after the human part
and the escalation rules can fire again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

from services.assist.suggestions import Suggestions
from services.assist.summary import HandoffSummaries
from services.errors import (
    AgentNotFound,
    Forbidden,
    InvalidMessage,
    NothingToRate,
    TransitionRefused,
)
from services.events import Events
from services.i18n import Catalogues
from services.metrics import Metrics
from services.notifier import Notifier
from services.routing import Router
from services.sessions import Session, SessionManager, iso, new_id
from services.store import Move, MoveResult, Snapshot, now_ms

log = logging.getLogger(__name__)

URGENT = re.compile(r"(?<!\w)(urgent|emergency|asap|immediately)(?!\w)", re.I)
PREVIEW = 140
PREVIEWED = ("user", "agent", "assistant")  # the queue's preview skips system lines and notes
OFFER_FIELDS = ("offerTo", "offerName", "offerExpires")
# as conversation.<event> to the event sinks (webhooks take the types they know; analytics
# also counts handed_back)
PUBLISHED = ("escalated", "assigned", "resolved", "handed_back")


class Actor(Protocol):
    """Who takes a step: an agent (services.agents.Agent fits)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...


class AgentLookup(Protocol):
    async def get(self, agent_id: str) -> Any: ...


class Presence(Protocol):
    async def online_count(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Step:
    event: str
    allowed: tuple[str, ...]
    to: str
    queue: str = "keep"
    holder_only: bool = False
    next_episode: bool = False


STEPS = {
    "escalate": Step("escalated", ("active",), "escalated", queue="add"),
    "claim": Step("assigned", ("escalated",), "assigned"),
    "transfer": Step("transferred", ("assigned",), "assigned", holder_only=True),
    "release": Step("released", ("assigned",), "escalated", holder_only=True),
    "handback": Step(
        "handed_back", ("assigned",), "active", queue="rem", holder_only=True, next_episode=True
    ),
    "resolve": Step(
        "resolved", ("escalated", "assigned"), "resolved", queue="rem", holder_only=True
    ),
    "reopen": Step("reopened", ("resolved",), "active", next_episode=True),
    "reply": Step("", ("assigned",), "assigned", holder_only=True),
}


def priority_of(text: str, priority: int | None = None) -> int:
    """The queue priority, higher goes first: `priority` when given (ChatService passes the
    escalation policy's, from ESCALATION_PRIORITY_KEYWORDS), else 1 for urgent wording."""
    if priority is not None:
        return priority
    return 1 if URGENT.search(text) else 0


def who(actor: Actor | None) -> dict[str, str] | None:
    return None if actor is None else {"id": actor.id, "name": actor.name}


class ConversationService:
    def __init__(
        self,
        *,
        sessions: SessionManager,
        notifier: Notifier,
        metrics: Metrics,
        agents: AgentLookup | None = None,
        presence: Presence | None = None,
        notice_interval_ms: int = 120_000,
        max_message_length: int = 4000,
        events: Events | None = None,
        router: Router | None = None,
        summaries: HandoffSummaries | None = None,
        suggestions: Suggestions | None = None,
        catalogues: Catalogues | None = None,
    ) -> None:
        self.sessions = sessions
        self.notifier = notifier
        self.metrics = metrics
        self.agents = agents
        self.presence = presence
        self.notice_interval_ms = notice_interval_ms
        self.max_message_length = max_message_length
        self.events = events or Events()
        self.router = router
        self.summaries = summaries  # the handoff summary (services/assist/summary.py)
        self.suggestions = suggestions  # which suggestion a reply used (services/assist/)
        self.catalogues = catalogues or Catalogues.bundled()

    # -- the steps -----------------------------------------------------------------
    async def escalate(
        self,
        session: Session,
        reasons: list[dict[str, str]],
        text: str,
        *,
        priority: int | None = None,
        team: str | None = None,
    ) -> bool:
        """active -> escalated; False when the conversation was not active (no second handoff).
        With routing on, the conversation is then offered to an online agent (of `team`)."""
        now = now_ms()
        priority = priority_of(text, priority)
        detail = ", ".join(f"{r['rule']}: {r['detail']}" for r in reasons)
        summary = await self.summaries.extract(session, reasons) if self.summaries else None
        kept = (self.summaries.sealed(session.id, summary),) if self.summaries and summary else ()
        result = await self._step(
            session.id,
            "escalate",
            None,
            reason=detail,
            refuse=False,
            score=now - priority * 1e13,
            fields=(
                ("escalatedAt", str(now)),
                ("waitingSince", str(now)),
                ("priority", str(priority)),
                ("escalation", self.sessions.seal_field(session.id, "escalation", reasons)),
                ("team", team or ""),
                *kept,
            ),
            published={"summary": summary} if summary else None,
        )
        if result is not None and self.summaries and summary:
            self.summaries.refine_later(session, summary)  # the model's, a moment later
        if result is not None and self.router is not None and self.router.active:
            await self.router.forget_declines(session.id)
            await self.router.route(session.id)
        return result is not None

    async def claim(self, session_id: str, actor: Actor) -> dict[str, Any]:
        offered = (await self.sessions.snapshot(session_id)).fields.get("offerTo", b"").decode()
        await self._step(
            session_id,
            "claim",
            actor,
            fields=(("assignedTo", actor.id), ("assignedName", actor.name)),
            del_fields=OFFER_FIELDS,
        )
        await self.notifier.to_customer(
            session_id, "agent-joined", {"sessionId": session_id, "agentName": actor.name}
        )
        if offered and offered != actor.id:  # offered to someone else, who need not decide now
            await self.notifier.to_agent(
                offered, "offer-withdrawn", {"sessionId": session_id, "reason": "claimed"}
            )
        return await self.item(session_id)

    async def queue_changed(self, session_id: str) -> None:
        """Tell every agent a waiting conversation changed (e.g. who it is offered to)."""
        await self._queue_event("updated", session_id)

    async def transfer(self, session_id: str, actor: Actor, to_agent: str | None) -> dict[str, Any]:
        if to_agent is None:
            await self._step(
                session_id, "release", actor, del_fields=("assignedTo", "assignedName")
            )
            if self.router is not None and self.router.active:
                await self.router.route(session_id)
            return await self.item(session_id)
        target = await self._agent(to_agent)
        await self._step(
            session_id,
            "transfer",
            actor,
            reason=f"to {target.name}",
            fields=(("assignedTo", target.id), ("assignedName", target.name)),
        )
        await self.notifier.to_customer(
            session_id, "agent-joined", {"sessionId": session_id, "agentName": target.name}
        )
        return await self.item(session_id)

    async def handback(self, session_id: str, actor: Actor) -> dict[str, Any]:
        await self._step(
            session_id,
            "handback",
            actor,
            context_here=True,
            del_fields=("assignedTo", "assignedName", "waitingSince", "priority"),
        )
        return await self.item(session_id)

    async def resolve(
        self, session_id: str, actor: Actor, note: str | None = None
    ) -> dict[str, Any]:
        if note:
            await self.note(session_id, actor, note)
        result = await self._step(
            session_id,
            "resolve",
            actor,
            del_fields=("assignedTo", "assignedName", "waitingSince", "priority"),
        )
        assert result is not None
        self.metrics.resolved += 1
        await self.notifier.to_customer(
            session_id, "csat-request", {"sessionId": session_id, "episode": result.episode}
        )
        return await self.item(session_id)

    async def reopen(self, session: Session) -> None:
        """The customer writes again after a resolve: a new episode with the bot."""
        await self._step(session.id, "reopen", None, refuse=False, context_here=True)

    # -- messages from agents ----------------------------------------------------------
    async def reply(
        self, session_id: str, actor: Actor, text: str, suggestion: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The holder's (or an admin's) reply, appended and pushed live to the customer;
        `suggestion` names the reply suggestion it came from ({id, origin, edited}), if any."""
        text = self._clean(text)
        entry = {
            "id": new_id(12),
            "role": "agent",
            "content": text,
            "timestamp": iso(now_ms()),
            "agentId": actor.id,
            "agentName": actor.name,
        }
        await self._step(session_id, "reply", actor, entry=entry)
        self.metrics.agent_messages += 1
        if self.suggestions is not None:
            await self.suggestions.record(session_id, actor.id, suggestion)
        await self.events.publish("message.agent", {"sessionId": session_id, "agentId": actor.id})
        payload = {
            "sessionId": session_id,
            "messageId": entry["id"],
            "message": text,
            "timestamp": entry["timestamp"],
            "isBot": False,
            "sender": "agent",
            "agentName": actor.name,
        }
        await self.notifier.to_customer(session_id, "message-received", payload)
        await self.notifier.to_agents(
            "message-received",
            {**payload, "agentId": actor.id},
            session_id=session_id,
            holder=actor.id,
        )
        return entry

    async def note(self, session_id: str, actor: Actor, text: str) -> dict[str, Any]:
        """An internal note: agents only, never the customer, never a model."""
        text = self._clean(text)
        entry = {
            "id": new_id(12),
            "role": "note",
            "content": text,
            "timestamp": iso(now_ms()),
            "agentId": actor.id,
            "agentName": actor.name,
        }
        await self.sessions.append(session_id, entry)
        await self.notifier.to_agents(
            "note-added", {"sessionId": session_id, "note": entry}, session_id=session_id
        )
        return entry

    # -- the customer's side -------------------------------------------------------------
    async def customer_wrote(self, session: Session, entry: dict[str, Any]) -> None:
        """A customer message while a person is needed: to the holder, watchers and admins."""
        payload = {
            "sessionId": session.id,
            "messageId": entry["id"],
            "message": entry["content"],
            "timestamp": entry["timestamp"],
            "isBot": False,
            "sender": "customer",
            "userId": entry.get("userId"),
        }
        await self.notifier.to_agents(
            "message-received", payload, session_id=session.id, holder=session.assigned_to
        )
        if session.status == "escalated":  # everyone sees who is still waiting, and what they say
            await self._queue_event("updated", session.id)

    async def held_message(
        self, session: Session, entry: dict[str, Any], language: str = "en"
    ) -> str | None:
        """A customer message while a person is needed: to the agents; maybe a queue notice
        (`server.queue_notice` / `server.wait_notice` in the customer's language)."""
        await self.customer_wrote(session, entry)
        if session.status != "escalated":
            return None
        if not await self.sessions.notice_due(session.id, self.notice_interval_ms):
            return None
        position = await self.queue_position(session.id)
        online = await self.presence.online_count() if self.presence else 0
        say = self.catalogues.text
        if position and online:
            return say(language, "server.queue_notice", n=position)
        return say(language, "server.wait_notice")

    async def rate(self, session_id: str, rating: int, comment: str | None) -> dict[str, Any]:
        """The customer's rating of a bot answer or of the last resolved episode; once per
        episode. Published as conversation.rated (analytics: 4-5 after a bot answer confirms
        the bot resolution)."""
        session = await self.sessions.get(session_id)
        episode = await self._rated_episode(session)
        csat: dict[str, Any] = {"episode": episode, "rating": rating, "timestamp": iso(now_ms())}
        if comment:
            csat["comment"] = comment
        if not await self.sessions.set_once(session_id, f"csat:{episode}", csat):
            raise NothingToRate("this conversation has already been rated")
        self.metrics.csat[str(rating)] += 1
        entry = self._system_entry("rated", None, f"rating {rating}", session.status)
        await self.sessions.append(session_id, entry)
        await self.events.publish(
            "conversation.rated", {"sessionId": session_id, "userId": session.user_id, **csat}
        )
        await self.notifier.to_agents(
            "conversation-updated",
            {
                "sessionId": session_id,
                "status": session.status,
                "previous": session.status,
                "event": "rated",
                "assignedTo": None,
                "by": None,
                "timestamp": csat["timestamp"],
                "csat": csat,
            },
        )
        return csat

    async def _rated_episode(self, session: Session) -> int:
        """The current episode when the bot answered in it and no person was needed (still
        active), else the last episode a person resolved; NothingToRate when neither."""
        if session.status == "active":
            entries = await self.sessions.transcript(session.id, session.context_from)
            if any(e.get("role") == "assistant" and not e.get("notice") for e in entries):
                return session.episode
        if session.csat_episode is None:
            raise NothingToRate("there is no bot answer or resolved conversation to rate yet")
        return session.csat_episode

    async def customer_typing(self, session_id: str, is_typing: bool) -> None:
        session = await self.sessions.get(session_id)
        if session.held:
            await self.notifier.to_agents(
                "typing",
                {"sessionId": session_id, "isTyping": is_typing, "sender": "customer"},
                session_id=session_id,
                holder=session.assigned_to,
            )

    async def agent_typing(self, session_id: str, actor: Actor, is_typing: bool) -> None:
        session = await self.sessions.get(session_id)
        if session.status != "assigned" or (
            session.assigned_to != actor.id and actor.role != "admin"
        ):
            raise Forbidden("only the agent holding the conversation can type in it")
        await self.notifier.to_customer(
            session_id,
            "typing",
            {
                "sessionId": session_id,
                "isTyping": is_typing,
                "sender": "agent",
                "agentName": actor.name,
            },
        )

    # -- reading ---------------------------------------------------------------------------
    async def queue(
        self, *, status: str | None = None, mine: Actor | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        items = [self._item(s) for s in await self.sessions.queue()]
        counts = {
            "escalated": sum(i["status"] == "escalated" for i in items),
            "assigned": sum(i["status"] == "assigned" for i in items),
        }
        if status:
            items = [i for i in items if i["status"] == status]
        if mine is not None:
            items = [i for i in items if (i["assignedTo"] or {}).get("id") == mine.id]
        return items, counts

    async def item(self, session_id: str) -> dict[str, Any]:
        return self._item(await self.sessions.snapshot(session_id))

    async def conversation(self, session_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The queue item with its ratings, and the whole transcript (notes included)."""
        snap = await self.sessions.snapshot(session_id)
        item = self._item(snap)
        item["csat"] = [
            rating
            for name, sealed in sorted(snap.fields.items())
            if name.startswith("csat:")
            and (rating := self.sessions.open_field(session_id, name, sealed)) is not None
        ]
        return item, await self.sessions.transcript(session_id)

    async def queue_position(self, session_id: str) -> int | None:
        """1-based place among the conversations still waiting for a person."""
        waiting = [
            s.session_id
            for s in await self.sessions.queue()
            if s.fields.get("status") == b"escalated"
        ]
        return waiting.index(session_id) + 1 if session_id in waiting else None

    # -- internals -------------------------------------------------------------------------
    def _clean(self, text: str) -> str:
        text = text.strip()
        if not text:
            raise InvalidMessage("message must not be empty")
        if len(text) > self.max_message_length:
            raise InvalidMessage(f"message is longer than {self.max_message_length} characters")
        return text

    async def _agent(self, agent_id: str) -> Any:
        if self.agents is None:
            raise AgentNotFound(f"no agent {agent_id}")
        agent = await self.agents.get(agent_id)
        if agent.disabled:
            raise AgentNotFound(f"agent {agent_id} is disabled")
        return agent

    def _system_entry(
        self, event: str, actor: Actor | None, reason: str, status: str
    ) -> dict[str, Any]:
        name = actor.name if actor else None
        text = {
            "escalated": f"Handed over to the team ({reason})",
            "assigned": f"{name} joined the conversation",
            "transferred": f"{name} transferred the conversation {reason}",
            "released": f"{name} returned the conversation to the queue",
            "handed_back": f"{name} handed the conversation back to the assistant",
            "resolved": f"{name or 'The team'} resolved the conversation",
            "reopened": "The customer wrote again",
            "rated": f"The customer left a {reason}",
        }.get(event, event)
        return {
            "id": new_id(12),
            "role": "system",
            "content": text,
            "timestamp": iso(now_ms()),
            "event": event,
            "by": who(actor),
            "reason": reason,
            "status": status,
        }

    async def _step(
        self,
        session_id: str,
        name: str,
        actor: Actor | None,
        *,
        reason: str = "",
        refuse: bool = True,
        entry: dict[str, Any] | None = None,
        score: float = 0.0,
        context_here: bool = False,
        fields: tuple[tuple[str, str | bytes], ...] = (),
        del_fields: tuple[str, ...] = (),
        published: dict[str, Any] | None = None,
    ) -> MoveResult | None:
        """Apply a step; None when it was not allowed and `refuse` is False. `published`:
        more data for the domain event (e.g. the handoff summary)."""
        step = STEPS[name]
        if entry is None:
            entry = self._system_entry(step.event, actor, reason, step.to)
        holder = actor.id if (step.holder_only and actor and actor.role != "admin") else ""
        result = await self.sessions.move(
            session_id,
            Move(
                allowed=step.allowed,
                to=step.to,
                holder=holder,
                queue=step.queue,
                score=score,
                entry=self.sessions.seal_entry(session_id, entry),
                next_episode=step.next_episode,
                context_here=context_here,
                rate_episode=step.to == "resolved",
                set_fields=fields,
                del_fields=del_fields,
            ),
        )
        if not result.done:
            if not refuse:
                return None
            holder_info = (
                {"id": result.holder_id, "name": result.holder_name} if result.holder_id else None
            )
            if result.code == -3:
                raise Forbidden(
                    f"the conversation is held by {result.holder_name or result.holder_id}"
                )
            by = f" by {result.holder_name}" if result.holder_name else ""
            raise TransitionRefused(
                f"cannot {name} a conversation that is {result.previous}{by}",
                status=result.previous,
                holder=holder_info,
            )
        if step.event:
            self.metrics.transitions[step.event] += 1
            await self._announce(session_id, step, actor, result, reason, published)
        return result

    async def _announce(
        self,
        session_id: str,
        step: Step,
        actor: Actor | None,
        result: MoveResult,
        reason: str,
        published: dict[str, Any] | None = None,
    ) -> None:
        item = await self.item(session_id)
        customer: dict[str, Any] = {
            "sessionId": session_id,
            "status": step.to,
            "event": step.event,
        }
        if item["assignedTo"]:
            customer["agentName"] = item["assignedTo"]["name"]
        if step.to == "escalated":
            customer["queuePosition"] = await self.queue_position(session_id)
        await self.notifier.to_customer(session_id, "conversation-updated", customer)
        await self.notifier.to_agents(
            "conversation-updated",
            {
                "sessionId": session_id,
                "status": step.to,
                "previous": result.previous,
                "event": step.event,
                "assignedTo": item["assignedTo"],
                "by": who(actor),
                "reason": reason,
                "timestamp": iso(now_ms()),
                "item": item,
            },
        )
        action = {"add": "added", "rem": "removed"}.get(step.queue, "updated")
        await self.notifier.to_agents("queue-updated", {"action": action, "item": item})
        if step.event in PUBLISHED:
            await self.events.publish(
                f"conversation.{step.event}",
                {
                    "sessionId": session_id,
                    "status": step.to,
                    "previous": result.previous,
                    "by": who(actor),
                    "reason": reason,
                    "conversation": item,
                    **(published or {}),
                },
            )

    async def _queue_event(self, action: str, session_id: str) -> None:
        await self.notifier.to_agents(
            "queue-updated", {"action": action, "item": await self.item(session_id)}
        )

    def _item(self, snap: Snapshot) -> dict[str, Any]:
        f, sid = snap.fields, snap.session_id
        data = self.sessions.open_field(sid, "data", f["data"]) or {}
        reasons = (
            self.sessions.open_field(sid, "escalation", f["escalation"])
            if "escalation" in f
            else []
        )
        last = next(
            (
                e
                for e in (self.sessions.open_entry(sid, raw) for raw in reversed(snap.tail))
                if e is not None and e.get("role") in PREVIEWED
            ),
            None,
        )
        waiting = f.get("waitingSince")
        assigned = f.get("assignedTo")
        return {
            "sessionId": sid,
            "userId": data.get("userId", ""),
            "status": f.get("status", b"active").decode(),
            "reasons": reasons or [],
            "priority": int(f.get("priority") or 0),
            "waitingSince": iso(int(waiting)) if waiting else None,
            "assignedTo": (
                {"id": assigned.decode(), "name": f.get("assignedName", b"").decode()}
                if assigned
                else None
            ),
            "lastMessage": (
                {
                    "role": last["role"],
                    "content": last["content"][:PREVIEW],
                    "timestamp": last["timestamp"],
                }
                if last
                else None
            ),
            "messageCount": snap.length,
            "episode": int(f.get("episode") or 1),
            "team": f.get("team", b"").decode() or None,
            "offeredTo": (
                {"id": f["offerTo"].decode(), "name": f.get("offerName", b"").decode()}
                if f.get("offerTo")
                else None
            ),
        }
