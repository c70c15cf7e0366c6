"""The event sink that counts: each domain event becomes one episode step (a
compare-and-set on the session's episode key, retried when another instance wrote first),
then its counter increments, then the episode's next settling time.

Events are recorded in batches (services/batching.py takes them off the request
path): one pipeline reads the batch's episodes, each session's steps apply in order in
memory, one pipeline compare-and-sets them (one script per session, on its own key), and
one pipeline adds the counters, the settling times and the customers; a session whose
episode another instance changed meanwhile is read and stepped again on its own. Each
event's time is the time it was published, not the time it is written.

Events (services/events.py): message.customer, message.bot, message.agent,
conversation.assigned, conversation.resolved, conversation.handed_back,
conversation.rated, webhook.delivery, agent.replied (agent assist: was a suggestion used).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from services.analytics.clock import Clock, ms
from services.analytics.episodes import Effects, Episode, Windows
from services.analytics.gaps import GapRecorder
from services.analytics.histogram import LATENCY_BOUNDS, observe
from services.analytics.store import AnalyticsStore

log = logging.getLogger(__name__)

# A customer's thanks (or "that solved it") after a bot answer confirms the resolution.
THANKS = re.compile(
    r"(?<!\w)(thanks?|thank\s+you|thx|ty|cheers|much\s+appreciated|that\s+(helped|solved\s+it|"
    r"worked)|danke|merci|gracias|grazie|obrigad[oa])(?!\w)",
    re.I,
)
RETRIES = 8

Apply = Callable[[Episode, int, Effects], Any]


def is_thanks(text: str) -> bool:
    return bool(THANKS.search(text)) and len(text) <= 120


@dataclass(frozen=True, slots=True)
class Event:
    """A domain event as accepted: its type, its data, and when (ms) it was published."""

    type: str
    data: dict[str, Any]
    at: int


@dataclass(frozen=True, slots=True)
class Step:
    """One episode step: `apply(episode, at, effects)`; `user_id` counts a customer."""

    apply: Apply
    at: int
    user_id: str | None = None


@dataclass
class Plan:
    """What a batch of events does: episode steps by session (in order), counters that
    need no episode, and unanswered questions."""

    steps: dict[str, list[Step]] = field(default_factory=dict)
    effects: Effects = field(default_factory=Effects)
    questions: list[tuple[str, str, int]] = field(default_factory=list)

    def step(self, session_id: str, apply: Apply, at: int, user_id: str | None = None) -> None:
        self.steps.setdefault(session_id, []).append(Step(apply, at, user_id))


class Recorder:
    def __init__(
        self, store: AnalyticsStore, windows: Windows, clock: Clock, gaps: GapRecorder
    ) -> None:
        self.store = store
        self.windows = windows
        self.clock = clock
        self.gaps = gaps
        self.episode_ttl = windows.reopen + windows.assumed + 86_400_000

    def accepts(self, event_type: str) -> bool:
        return event_type in self.handlers

    def event(self, event_type: str, data: dict[str, Any]) -> Event:
        """The event, stamped with the time it happens (the analytics clock)."""
        return Event(event_type, data, ms(self.clock))

    async def publish(self, event_type: str, data: dict[str, Any]) -> None:
        """Record one event now."""
        if self.accepts(event_type):
            await self.record([self.event(event_type, data)])

    async def record(self, events: list[Event]) -> None:
        """Record a batch of events, in order."""
        plan = Plan()
        for event in events:
            handler = self.handlers.get(event.type)
            try:
                if handler is not None:
                    handler(self, event, plan)
            except (KeyError, TypeError, ValueError):  # one malformed event, not the batch
                log.exception("analytics: an unreadable event", extra={"event_type": event.type})
        effects = plan.effects
        dues: dict[str, int | None] = {}
        customers: list[tuple[int, str]] = []
        if plan.steps:
            episodes = await self.store.load_many(list(plan.steps))
            outcomes = {sid: self._apply(ep, plan.steps[sid]) for sid, ep in episodes.items()}
            saved = await self.store.save_many(
                [(sid, ep) for sid, (ep, _) in outcomes.items()], self.episode_ttl
            )
            for sid, ok in saved.items():
                episode, fx = outcomes[sid] if ok else await self._retry(sid, plan.steps[sid])
                if episode is None:
                    continue
                effects.counts.extend(fx.counts)
                dues[sid] = episode.due(self.windows)
                customers.extend((s.at, s.user_id) for s in plan.steps[sid] if s.user_id)
        await self.store.count(effects, dues=dues, customers=customers)
        if plan.questions:
            await self.gaps.add_many(plan.questions)

    @staticmethod
    def _apply(episode: Episode, steps: list[Step]) -> tuple[Episode, Effects]:
        fx = Effects()
        for step in steps:
            step.apply(episode, step.at, fx)
        return episode, fx

    async def _retry(self, session_id: str, steps: list[Step]) -> tuple[Episode | None, Effects]:
        """Another writer came first: read the episode again and step it alone."""
        for _ in range(RETRIES):
            episode, fx = self._apply(await self.store.load(session_id), steps)
            if await self.store.save(session_id, episode, self.episode_ttl):
                return episode, fx
        log.warning("analytics: an episode kept changing; %d events not counted", len(steps))
        return None, Effects()

    async def settle(self, session_id: str) -> None:
        """The settling job's step: now, by the clock."""
        w = self.windows
        plan = Plan()
        plan.step(session_id, lambda ep, now, fx: ep.settle(now, w, fx), ms(self.clock))
        episode, fx = await self._retry(session_id, plan.steps[session_id])
        if episode is not None:
            await self.store.count(fx, dues={session_id: episode.due(w)})

    # -- events: each adds its steps and counts to the batch's plan ----------------------
    def _customer(self, event: Event, plan: Plan) -> None:
        data = event.data
        thanks = is_thanks(str(data.get("text", "")))
        waiting = bool(data.get("waiting"))
        w = self.windows
        plan.step(
            data["sessionId"],
            lambda ep, now, fx: ep.customer_message(now, thanks, w, fx, waiting),
            event.at,
            user_id=str(data["userId"]) if data.get("userId") else None,
        )

    def _bot(self, event: Event, plan: Plan) -> None:
        data = event.data
        escalated = list(data.get("escalated") or [])
        attempts = Effects()  # read now: a malformed attempt fails its event, not the batch
        self._attempts(list(data.get("attempts") or []), event.at, attempts)

        def answer(ep: Episode, now: int, fx: Effects) -> None:
            ep.bot_answer(now, escalated, fx)
            fx.counts.extend(attempts.counts)

        plan.step(data["sessionId"], answer, event.at)
        if reason := data.get("gap"):
            plan.questions.append((str(data.get("question", "")), str(reason), event.at))

    @staticmethod
    def _attempts(attempts: list[dict[str, Any]], now: int, fx: Effects) -> None:
        """Per provider: replies, failed attempts, failovers, tokens by model, latency."""
        for i, attempt in enumerate(attempts):
            provider = attempt["provider"]
            fields = observe(f"lat|{provider}", attempt["latencyMs"], LATENCY_BOUNDS)
            if attempt["ok"]:
                fields[f"p|{provider}|replies"] = 1
                model = attempt.get("model") or "-"
                fields[f"t|{provider}|{model}|prompt"] = int(attempt.get("promptTokens") or 0)
                fields[f"t|{provider}|{model}|completion"] = int(
                    attempt.get("completionTokens") or 0
                )
            else:
                fields[f"p|{provider}|failures"] = 1
                if any(a["ok"] for a in attempts[i + 1 :]) and not any(
                    a["provider"] == provider for a in attempts[i + 1 :]
                ):
                    fields[f"p|{provider}|failovers"] = 1
            fx.add(now, fields)

    def _assigned(self, event: Event, plan: Plan) -> None:
        if event.data.get("previous") == "escalated":  # a claim (or an accepted offer)
            plan.step(event.data["sessionId"], lambda ep, now, fx: ep.claimed(now, fx), event.at)

    def _agent(self, event: Event, plan: Plan) -> None:
        plan.step(event.data["sessionId"], lambda ep, now, fx: ep.agent_reply(now, fx), event.at)

    def _resolved(self, event: Event, plan: Plan) -> None:
        plan.step(event.data["sessionId"], lambda ep, now, fx: ep.resolved(now, fx), event.at)

    def _rated(self, event: Event, plan: Plan) -> None:
        rating = int(event.data["rating"])
        plan.step(event.data["sessionId"], lambda ep, now, fx: ep.rated(now, rating, fx), event.at)

    def _webhook(self, event: Event, plan: Plan) -> None:
        plan.effects.add(event.at, {f"wh:{event.data['result']}": 1})

    def _suggestion(self, event: Event, plan: Plan) -> None:
        """agent.replied (agent assist): a reply that came from a suggestion counts."""
        if event.data.get("suggestion"):
            plan.effects.add(event.at, {"assist:used": 1})

    handlers: ClassVar[dict[str, Callable[[Recorder, Event, Plan], None]]] = {
        "message.customer": _customer,
        "message.bot": _bot,
        "message.agent": _agent,
        "conversation.assigned": _assigned,
        "conversation.resolved": _resolved,
        "conversation.handed_back": _resolved,
        "conversation.rated": _rated,
        "webhook.delivery": _webhook,
        "agent.replied": _suggestion,
    }
