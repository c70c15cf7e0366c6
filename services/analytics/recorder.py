"""The event sink that counts: each domain event becomes one episode step (a
compare-and-set on the session's episode key, retried when another instance wrote first),
then its counter increments, then the episode's next settling time.

Events (services/events.py): message.customer, message.bot, message.agent,
conversation.assigned, conversation.resolved, conversation.handed_back,
conversation.rated, webhook.delivery, agent.replied (agent assist: was a suggestion used).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
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


def is_thanks(text: str) -> bool:
    return bool(THANKS.search(text)) and len(text) <= 120


class Recorder:
    def __init__(
        self, store: AnalyticsStore, windows: Windows, clock: Clock, gaps: GapRecorder
    ) -> None:
        self.store = store
        self.windows = windows
        self.clock = clock
        self.gaps = gaps
        self.episode_ttl = windows.reopen + windows.assumed + 86_400_000

    async def publish(self, event_type: str, data: dict[str, Any]) -> None:
        handler = self.handlers.get(event_type)
        if handler is not None:
            await handler(self, data)

    # -- one episode step, atomically --------------------------------------------------
    async def step(
        self,
        session_id: str,
        apply: Callable[[Episode, int, Effects], Any],
        user_id: str | None = None,
    ) -> None:
        """Three round trips: read the episode, compare-and-set it, count (one pipeline)."""
        for _ in range(RETRIES):
            now = ms(self.clock)
            episode = await self.store.load(session_id)
            fx = Effects()
            apply(episode, now, fx)
            if await self.store.save(session_id, episode, self.episode_ttl):
                await self.store.count(
                    fx,
                    due=(session_id, episode.due(self.windows)),
                    customer=(now, user_id) if user_id else None,
                )
                return
        log.warning("analytics: an episode kept changing; one event not counted")

    async def settle(self, session_id: str) -> None:
        w = self.windows
        await self.step(session_id, lambda ep, now, fx: ep.settle(now, w, fx))

    # -- events ------------------------------------------------------------------------
    async def _customer(self, data: dict[str, Any]) -> None:
        thanks = is_thanks(str(data.get("text", "")))
        waiting = bool(data.get("waiting"))
        w = self.windows
        await self.step(
            data["sessionId"],
            lambda ep, now, fx: ep.customer_message(now, thanks, w, fx, waiting),
            user_id=str(data["userId"]) if data.get("userId") else None,
        )

    async def _bot(self, data: dict[str, Any]) -> None:
        escalated = list(data.get("escalated") or [])
        attempts = list(data.get("attempts") or [])

        def answer(ep: Episode, now: int, fx: Effects) -> None:
            ep.bot_answer(now, escalated, fx)
            self._attempts(attempts, now, fx)

        await self.step(data["sessionId"], answer)
        if reason := data.get("gap"):
            await self.gaps.add(str(data.get("question", "")), str(reason), ms(self.clock))

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

    async def _assigned(self, data: dict[str, Any]) -> None:
        if data.get("previous") == "escalated":  # a claim (or an accepted offer)
            await self.step(data["sessionId"], lambda ep, now, fx: ep.claimed(now, fx))

    async def _agent(self, data: dict[str, Any]) -> None:
        await self.step(data["sessionId"], lambda ep, now, fx: ep.agent_reply(now, fx))

    async def _resolved(self, data: dict[str, Any]) -> None:
        await self.step(data["sessionId"], lambda ep, now, fx: ep.resolved(now, fx))

    async def _rated(self, data: dict[str, Any]) -> None:
        rating = int(data["rating"])
        await self.step(data["sessionId"], lambda ep, now, fx: ep.rated(now, rating, fx))

    async def _webhook(self, data: dict[str, Any]) -> None:
        fx = Effects()
        fx.add(ms(self.clock), {f"wh:{data['result']}": 1})
        await self.store.count(fx)

    async def _suggestion(self, data: dict[str, Any]) -> None:
        """agent.replied (agent assist): a reply that came from a suggestion counts."""
        if not data.get("suggestion"):
            return
        fx = Effects()
        fx.add(ms(self.clock), {"assist:used": 1})
        await self.store.count(fx)

    handlers: ClassVar[dict[str, Callable[[Recorder, dict[str, Any]], Awaitable[None]]]] = {
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
