"""ChatService: a customer's message in, the bot's reply out.

One entry point for REST and Socket.IO alike: record the message, ground and ask the
responder chain (streaming deltas to live clients), apply the escalation policy,
record the reply, and tell the session's room.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from services.conversations import ConversationService
from services.errors import InvalidMessage
from services.escalation import EscalationPolicy, Reason
from services.events import Events
from services.guard.redact import redact_prompt
from services.handoff import Handoff
from services.i18n import Catalogues
from services.knowledge.model import Match
from services.language import LanguageDetector
from services.logs import session_id_var
from services.metrics import Metrics
from services.notifier import Notifier, SilentNotifier
from services.responders.attempts import collect as collect_attempts
from services.responders.base import (
    Delta,
    Prompt,
    Reply,
    Reset,
    Responder,
    ResponderError,
    Source,
    Turn,
)
from services.responders.local import LocalResponder
from services.routing import TeamRules
from services.sessions import Session, SessionManager, iso, new_id
from services.store import now_ms

log = logging.getLogger(__name__)

# The fixed sentences come from the catalogues (services/i18n/messages/*.json, `server.*`):
# handoff, later (already waiting), unsure (low_confidence), apology (frustration), of_course
# (the customer asked for a person), not_helped (repeated_failure), trouble (no responder).
INTERNAL_ROLES = ("note",)  # agents only: never shown to the customer, never sent to a model
BLANK = " \t\n\r\f\v"  # the white space the spec's MessageText pattern names


class Grounding(Protocol):
    async def match(self, text: str, k: int | None = None) -> Match: ...


@dataclass(frozen=True, slots=True)
class ChatResult:
    session_id: str
    message_id: str
    text: str
    timestamp: str
    confidence: float
    provider: str
    sources: tuple[Source, ...]
    reasons: tuple[Reason, ...] = ()
    usage: dict[str, int] | None = None
    user_message: dict[str, Any] = field(default_factory=dict)
    status: str = "active"
    handled_by: dict[str, str] | None = None
    queue_position: int | None = None
    held: bool = False  # a person has the conversation: no responder was asked
    contact_requested: bool = False  # nobody can answer now: the customer may leave an e-mail
    next_opening: str | None = None
    language: str | None = None  # of the customer-facing text (the catalogues')

    @property
    def needs_escalation(self) -> bool:
        return bool(self.reasons) or self.status in ("escalated", "assigned")


def gap_reason(reply: Reply | None, reasons: list[Reason]) -> str | None:
    """Why this question counts as one the bot could not answer (the gaps report), if it
    does: escalated as repeated_failure, answered with low confidence, or out of scope (no
    knowledge-base entry backed the answer)."""
    rules = {r.rule for r in reasons}
    for rule in ("repeated_failure", "low_confidence"):
        if rule in rules:
            return rule
    if reply is not None and not reply.sources and not reply.needs_human and not rules:
        return "out_of_scope"
    return None


def _observed(done: asyncio.Future[Any]) -> None:
    """Mark a background result's failure as seen (the work that needs it handles it)."""
    if not done.cancelled():
        done.exception()


def source_dict(source: Source) -> dict[str, Any]:
    data: dict[str, Any] = {"id": source.id, "title": source.title, "score": round(source.score, 4)}
    if source.url:
        data["url"] = source.url
    return data


def entry_turn(entry: dict[str, Any]) -> Turn | None:
    role = entry.get("role")
    if role not in ("user", "assistant") or entry.get("notice"):
        return None
    return Turn(role, entry["content"])


class ChatService:
    def __init__(
        self,
        *,
        sessions: SessionManager,
        responder: Responder,
        policy: EscalationPolicy,
        metrics: Metrics,
        max_history: int,
        max_message_length: int,
        grounding: Grounding | None = None,
        grounding_k: int = 3,
        context_in_prompt: bool = True,
        notifier: Notifier | None = None,
        conversations: ConversationService | None = None,
        handoff: Handoff | None = None,
        teams: TeamRules | None = None,
        redact_region: str | None = None,
        catalogues: Catalogues | None = None,
        detector: LanguageDetector | None = None,
        knowledge_language: str = "en",
        events: Events | None = None,
    ) -> None:
        self.sessions = sessions
        self.responder = responder
        self.policy = policy
        self.metrics = metrics
        self.max_history = max_history
        self.max_message_length = max_message_length
        self.grounding = grounding  # the knowledge retrieval, started as a message arrives
        self.grounding_k = grounding_k
        # models read the retrieved entries in their prompt; the built-in engine, which is
        # the retrieval, finds its own match already computed (KnowledgeService.match)
        self.context_in_prompt = context_in_prompt
        self.notifier: Notifier = notifier or SilentNotifier()
        self.handoff = handoff
        self.teams = teams
        self.redact_region = redact_region  # REDACT_PII_FOR_LLM: None is off
        self.catalogues = catalogues or Catalogues.bundled()
        self.detector = detector
        self.knowledge_language = knowledge_language
        self.events = events or Events()  # message.customer, message.bot (analytics)
        self.conversations = conversations or ConversationService(
            sessions=sessions,
            notifier=self.notifier,
            metrics=metrics,
            max_message_length=max_message_length,
        )

    # -- sessions ------------------------------------------------------------------
    async def start_session(
        self, *, user_id: str, metadata: dict[str, Any] | None = None, language: str | None = None
    ) -> Session:
        """Create a session for a customer (`language`: the one they chose or their browser's,
        for the texts the server writes to them; see services/i18n)."""
        if language:
            metadata = {**(metadata or {}), "language": language}
        session = await self.sessions.create(user_id=user_id, metadata=metadata)
        self.metrics.sessions_created += 1
        log.info("session created", extra={"session": session.id[:8]})
        return session

    async def history(self, session_id: str) -> tuple[Session, list[dict[str, Any]]]:
        """The session and its transcript as the customer may see it (no internal notes)."""
        session = await self.sessions.get(session_id)
        transcript = await self.sessions.transcript(session_id)
        return session, [e for e in transcript if e.get("role") not in INTERNAL_ROLES]

    # -- messages ------------------------------------------------------------------
    def clean(self, text: str) -> str:
        text = text.strip(BLANK)
        if not text:
            raise InvalidMessage("message must not be empty")
        if len(text) > self.max_message_length:
            raise InvalidMessage(f"message is longer than {self.max_message_length} characters")
        return text

    async def send(
        self, *, session_id: str, user_id: str | None, message: str, origin_sid: str | None = None
    ) -> ChatResult:
        """Record the customer's message, answer it, escalate if the policy says so.

        What only needs the text runs beside the reads and writes that need the session:
        the language detection (another process) beside reading the session with its recent
        transcript (one round trip), the knowledge retrieval (a thread) beside storing the
        message."""
        text = self.clean(message)
        session_id_var.set(session_id)
        detecting = (
            asyncio.ensure_future(self.detector.detect(text)) if self.detector is not None else None
        )
        grounding: asyncio.Future[Match] | None = None
        try:
            session, previous = await self.sessions.get_with_recent(session_id, self.lookback)
            if session.status == "resolved":  # the customer is back: a new episode with the bot
                await self.conversations.reopen(session)
                session, previous = await self.sessions.get_with_recent(session_id, self.lookback)
            if not session.held:
                grounding = self._ground(text)
            user_id = user_id or session.user_id
            user_entry = {
                "id": new_id(12),
                "role": "user",
                "content": text,
                "timestamp": iso(now_ms()),
                "userId": user_id,
            }
            if detecting is not None and (detected := await detecting):
                user_entry["language"] = detected
            await self.sessions.append(session_id, user_entry)
        except BaseException:
            for pending in (detecting, grounding):
                if pending is not None:
                    pending.cancel()
            raise
        self.metrics.messages += 1
        await self.events.publish(
            "message.customer",
            {"sessionId": session_id, "userId": user_id, "text": text, "waiting": session.held},
        )
        await self.notifier.customer_message(
            session_id, {**user_entry, "sessionId": session_id}, skip_sid=origin_sid
        )
        if session.held:
            if session.status == "escalated" and self.handoff and self.handoff.off_hours_bot:
                reach = await self.handoff.reach()
                if not reach.reachable:  # nobody can answer yet: the bot helps meanwhile
                    await self.conversations.customer_wrote(session, user_entry)
                    return await self._bot_turn(session, user_entry, previous, meanwhile=True)
            return await self._held(session, user_entry)
        return await self._bot_turn(session, user_entry, previous, grounding)

    @property
    def lookback(self) -> int:
        """Transcript entries read with a message: the last MAX_CONVERSATION_HISTORY (the
        model's context) or as many as the escalation policy looks back, if that is more."""
        return max(self.max_history, self.policy.lookback)

    def _ground(self, text: str) -> asyncio.Future[Match] | None:
        """The knowledge retrieval for this text, started (None without a knowledge base)."""
        if self.grounding is None:
            return None
        return asyncio.ensure_future(self.grounding.match(text, self.grounding_k))

    def language_of(self, session: Session, detected: str | None = None) -> str:
        """The language of the texts the server writes to this customer: the widget's
        setting or the browser's (kept with the session), else the message's, else the
        knowledge base's; one with a catalogue (English otherwise)."""
        for candidate in (session.metadata.get("language"), detected, self.knowledge_language):
            if isinstance(candidate, str) and self.catalogues.has(candidate):
                return candidate
        return "en"

    async def _bot_turn(
        self,
        session: Session,
        user_entry: dict[str, Any],
        previous: list[dict[str, Any]],
        grounding: asyncio.Future[Match] | None = None,
        *,
        meanwhile: bool = False,
    ) -> ChatResult:
        """Ask the responders; escalate if the policy says so (unless a handoff is pending).
        `previous`: this episode's entries before the message (see `lookback`)."""
        session_id, text, user_id = session.id, user_entry["content"], user_entry["userId"]
        history = tuple(t for t in map(entry_turn, previous[-self.max_history :]) if t is not None)
        message_id = new_id(12)
        started = time.perf_counter()
        attempts = collect_attempts()
        detected = user_entry.get("language")
        language = self.language_of(session, detected)
        reply = await self._answer(
            session_id,
            message_id,
            text,
            history,
            detected or session.metadata.get("language"),
            grounding if grounding is not None else self._ground(text),
        )
        reply, reasons = self._judge(text, reply, previous, detected)
        reach = await self.handoff.reach() if reasons and self.handoff else None
        zone = session.metadata.get("timezone")
        if meanwhile:
            handoff_text = self.catalogues.text(language, "server.later")
        elif reach is not None and not reach.reachable and self.handoff:
            handoff_text = self.handoff.away_text(
                reach, zone if isinstance(zone, str) else None, language
            )
        else:
            handoff_text = ""
        result = self._result(
            session_id, message_id, reply, reasons, user_entry, language, handoff_text
        )
        if meanwhile:  # already waiting for a person: no second handoff
            result = replace(result, reasons=(), status="escalated")
        await self.sessions.append(session_id, self._entry(result))
        first = (
            await self.conversations.escalate(
                session,
                [r.as_dict() for r in reasons],
                text,
                priority=self.policy.priority(text),
                team=self.teams.team_for(reasons, result.sources) if self.teams else None,
            )
            if reasons and not meanwhile
            else False
        )
        if first:
            result = replace(
                result,
                status="escalated",
                queue_position=await self.conversations.queue_position(session_id),
            )
        if first and reach is not None and not reach.reachable and self.handoff:
            await self.handoff.offer_contact(session_id, session.episode, reach, handoff_text)
            result = replace(
                result,
                contact_requested=True,
                next_opening=reach.next_opening.isoformat() if reach.next_opening else None,
            )
        self._count(result)
        await self.events.publish(
            "message.bot",
            {
                "sessionId": session_id,
                "escalated": [r.rule for r in reasons] if first else [],
                "attempts": [a.as_dict() for a in attempts],
                "gap": gap_reason(reply, reasons) if not meanwhile else None,
                "question": text,
            },
        )
        log.info(
            "message answered",
            extra={
                "provider": result.provider,
                "confidence": round(result.confidence, 3),
                "escalation": [r.rule for r in reasons],
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        await self.notifier.bot_message(session_id, self.bot_payload(result))
        if first:
            await self.notifier.escalation(session_id, self.escalation_payload(result, user_id))
        return result

    def _judge(
        self,
        text: str,
        reply: Reply | None,
        previous: list[dict[str, Any]],
        detected: str | None,
    ) -> tuple[Reply | None, list[Reason]]:
        """The reply to give and the reasons to escalate. The built-in engine reads only the
        knowledge base's language: for a message in another language it says so politely in
        the customer's language when a catalogue has it, else the conversation escalates as
        `unsupported_language`. Models answer any language from the same knowledge."""
        foreign = (
            reply is not None
            and reply.provider == LocalResponder.name
            and detected is not None
            and detected != self.knowledge_language
        )
        if not foreign or reply is None or detected is None:
            return reply, self.policy.evaluate(text, reply, previous)
        if self.catalogues.has(detected):
            name = self.catalogues.language_name(detected, self.knowledge_language)
            polite = self.catalogues.text(detected, "server.unsupported_language", language=name)
            return replace(reply, text=polite, sources=(), needs_human=False), (
                self.policy.message_reasons(text)
            )
        return reply, self.policy.message_reasons(text) + self.policy.language_reasons(
            detected, self.knowledge_language
        )

    async def _held(self, session: Session, user_entry: dict[str, Any]) -> ChatResult:
        """A person is needed or has the conversation: no responder, at most a queue notice."""
        self.metrics.held_messages += 1
        language = self.language_of(session, user_entry.get("language"))
        notice = await self.conversations.held_message(session, user_entry, language)
        position = (
            await self.conversations.queue_position(session.id)
            if session.status == "escalated"
            else None
        )
        result = ChatResult(
            session_id=session.id,
            message_id=new_id(12),
            text=notice or "",
            timestamp=iso(now_ms()),
            confidence=0.0,
            provider="none",
            sources=(),
            user_message=user_entry,
            status=session.status,
            handled_by=session.holder,
            queue_position=position,
            held=True,
        )
        if notice:
            await self.sessions.append(session.id, {**self._entry(result), "notice": True})
            await self.notifier.bot_message(
                session.id, {**self.bot_payload(result), "notice": True}
            )
        return result

    async def typing(self, session_id: str, is_typing: bool) -> None:
        """The customer is typing: the agents holding or watching the conversation see it."""
        await self.conversations.customer_typing(session_id, is_typing)

    async def _answer(
        self,
        session_id: str,
        message_id: str,
        text: str,
        history: tuple[Turn, ...],
        language: str | None = None,
        grounding: asyncio.Future[Match] | None = None,
    ) -> Reply | None:
        context: tuple[Source, ...] = ()
        if grounding is not None and self.context_in_prompt:
            match = await grounding
            context = tuple(
                Source(h.entry.id, h.entry.title, h.score, h.entry.url, h.entry.answer)
                for h in match.hits
            )
        elif grounding is not None:  # the built-in engine meets a failure itself, as an answer
            grounding.add_done_callback(_observed)
        prompt = Prompt(
            message=text,
            history=history,
            context=context,
            session_id=session_id,
            language=language,
            knowledge_language=self.knowledge_language,
        )
        if self.redact_region is not None:
            prompt = redact_prompt(prompt, self.redact_region)
        await self.notifier.typing(session_id, True)
        try:
            reply = None
            async for event in self.responder.stream(prompt):
                if isinstance(event, Delta):
                    await self.notifier.chunk(session_id, message_id, event.text)
                elif isinstance(event, Reset):
                    await self.notifier.reset(session_id, message_id)
                elif isinstance(event, Reply):
                    reply = event
            return reply
        except ResponderError as exc:
            log.warning("no responder could answer", extra={"reason": str(exc)})
            return None
        finally:
            await self.notifier.typing(session_id, False)

    def _result(
        self,
        session_id: str,
        message_id: str,
        reply: Reply | None,
        reasons: list[Reason],
        user_entry: dict[str, Any],
        language: str = "en",
        away: str = "",
    ) -> ChatResult:
        """The reply's text: the responder's, or the fixed sentences (in `language`) around
        the handoff sentence, which is `away` when nobody can answer now."""
        say = self.catalogues.text
        handoff = away or say(language, "server.handoff")
        sources: tuple[Source, ...] = ()
        if reply is None:
            text, confidence, provider, usage = (
                f"{say(language, 'server.trouble')} {handoff}",
                0.0,
                "none",
                None,
            )
        else:
            confidence, provider, sources = reply.confidence, reply.provider, reply.sources
            usage = (
                {
                    "promptTokens": reply.usage.prompt_tokens,
                    "completionTokens": reply.usage.completion_tokens,
                }
                if reply.usage
                else None
            )
            rules = {r.rule for r in reasons}
            if "frustration" in rules:  # never an unrelated entry to an angry customer
                text = f"{say(language, 'server.apology')} {handoff}"
            elif "low_confidence" in rules:
                text = f"{say(language, 'server.unsure')} {handoff}"
            elif reply.needs_human and not away:  # it says so itself, and truly
                text = reply.text
            elif reply.needs_human:  # its own words, then honestly when someone can answer
                text = f"{reply.text}\n\n{handoff}"
            elif "requested" in rules:  # not whatever entry the request happened to match
                text = f"{say(language, 'server.of_course')} {handoff}"
            elif "repeated_failure" in rules:  # the same answer again would not help
                text = f"{say(language, 'server.not_helped')} {handoff}"
            elif reasons:
                text = f"{reply.text}\n\n{handoff}"
            else:
                text = reply.text
        return ChatResult(
            session_id=session_id,
            message_id=message_id,
            text=text,
            timestamp=iso(now_ms()),
            confidence=max(0.0, min(1.0, float(confidence))),
            provider=provider,
            sources=tuple(sources),
            reasons=tuple(reasons),
            usage=usage,
            user_message=user_entry,
            language=language,
        )

    def _entry(self, result: ChatResult) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": result.message_id,
            "role": "assistant",
            "content": result.text,
            "timestamp": result.timestamp,
            "provider": result.provider,
            "confidence": result.confidence,
            "sources": [source_dict(s) for s in result.sources],
            "needsEscalation": result.needs_escalation,
        }
        if result.language:
            entry["language"] = result.language
        if result.reasons:
            entry["escalation"] = [r.as_dict() for r in result.reasons]
        if result.usage:
            entry["usage"] = result.usage
        return entry

    def _count(self, result: ChatResult) -> None:
        self.metrics.replies[result.provider] += 1
        for reason in result.reasons:
            self.metrics.escalations[reason.rule] += 1

    # -- payloads for live clients ---------------------------------------------------
    def bot_payload(self, result: ChatResult) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "sessionId": result.session_id,
            "messageId": result.message_id,
            "message": result.text,
            "timestamp": result.timestamp,
            "isBot": True,
            "needsEscalation": result.needs_escalation,
            "confidence": result.confidence,
            "provider": result.provider,
            "sources": [source_dict(s) for s in result.sources],
        }
        if result.reasons:
            payload["escalation"] = {"reasons": [r.as_dict() for r in result.reasons]}
        return payload

    @staticmethod
    def escalation_payload(result: ChatResult, user_id: str) -> dict[str, Any]:
        return {
            "sessionId": result.session_id,
            "userId": user_id,
            "message": result.user_message.get("content", ""),
            "timestamp": result.timestamp,
            "reasons": [r.as_dict() for r in result.reasons],
        }
