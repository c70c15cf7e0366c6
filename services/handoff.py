"""Around a handoff, besides the lifecycle step: can a person answer now, and if not, the
honest word to the customer and the offer to leave an e-mail address (a ticket). Also the
watch that makes the same offer when nobody claims a waiting conversation in time.

Reachable means: within business hours and at least one agent online. The offer is made
at most once per episode (the session's `contact:<episode>` field, set once), so instances
running the watch side by side never offer twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from services.background import Periodic
from services.hours import BusinessHours, describe
from services.i18n import Catalogues
from services.notifier import Notifier
from services.sessions import SessionManager, iso, new_id
from services.store import now_ms

log = logging.getLogger(__name__)

# The customer's sentences come from the catalogues (services/i18n, `server.away_*`,
# `server.taking_long`), in the customer's language.


class Presence(Protocol):
    async def online_count(self) -> int: ...

    async def online(self) -> list[dict[str, str]]: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Reach:
    open: bool
    agents_online: int
    next_opening: datetime | None

    @property
    def reachable(self) -> bool:
        return self.open and self.agents_online > 0


class Handoff:
    def __init__(
        self,
        *,
        sessions: SessionManager,
        notifier: Notifier,
        hours: BusinessHours,
        presence: Presence,
        off_hours_bot: bool = True,
        timeout_ms: int = 300_000,
        clock: Callable[[], datetime] = utc_now,
        catalogues: Catalogues | None = None,
    ) -> None:
        self.sessions = sessions
        self.notifier = notifier
        self.hours = hours
        self.presence = presence
        self.off_hours_bot = off_hours_bot
        self.timeout_ms = timeout_ms
        self.clock = clock
        self.catalogues = catalogues or Catalogues.bundled()
        self._watch = Periodic("handoff watch", min(30.0, max(0.2, timeout_ms / 4000)), self.sweep)

    async def reach(self) -> Reach:
        now = self.clock()
        is_open = self.hours.is_open(now)
        online = await self.available() if is_open else 0
        return Reach(is_open, online, None if is_open else self.hours.next_opening(now))

    async def available(self) -> int:
        """Agents online and not away (an away agent does not count as someone to answer)."""
        if not await self.presence.online_count():
            return 0
        return sum(a.get("presence") == "online" for a in await self.presence.online())

    def away_text(self, reach: Reach, zone: str | None = None, language: str = "en") -> str:
        say = self.catalogues.text
        if reach.open:
            return say(language, "server.away_nobody")
        if reach.next_opening is None:
            return say(language, "server.away_closed_unknown")
        when = describe(reach.next_opening, self.clock(), zone, self.catalogues, language)
        return say(language, "server.away_closed", when=when)

    async def offer_contact(self, session_id: str, episode: int, reach: Reach, text: str) -> bool:
        """Tell the page to show the e-mail form (once per episode); True if offered now."""
        if not await self.sessions.set_once(session_id, f"contact:{episode}", now_ms()):
            return False
        payload: dict[str, Any] = {"sessionId": session_id, "message": text, "episode": episode}
        if reach.next_opening is not None:
            payload["nextOpening"] = reach.next_opening.isoformat()
        await self.notifier.to_customer(session_id, "contact-requested", payload)
        return True

    async def customer_language(self, session_id: str) -> str:
        """The language the session was started in (widget setting or browser), else English."""
        session = await self.sessions.get(session_id)
        language = session.metadata.get("language")
        return language if isinstance(language, str) and self.catalogues.has(language) else "en"

    # -- the watch ---------------------------------------------------------------------
    def start(self) -> None:
        if self.timeout_ms > 0:
            self._watch.start()

    async def aclose(self) -> None:
        await self._watch.aclose()

    async def sweep(self) -> int:
        """Offer e-mail to customers waiting longer than HANDOFF_TIMEOUT (while open) and
        remind the agents; the number of conversations handled."""
        if not self.hours.is_open(self.clock()):
            return 0
        due = now_ms() - self.timeout_ms
        handled = 0
        for snap in await self.sessions.queue():
            f = snap.fields
            waiting = int(f.get("waitingSince") or 0)
            if f.get("status") != b"escalated" or not waiting or waiting > due:
                continue
            episode = int(f.get("episode") or 1)
            reach = Reach(True, await self.available(), None)
            taking_long = self.catalogues.text(
                await self.customer_language(snap.session_id), "server.taking_long"
            )
            if not await self.offer_contact(snap.session_id, episode, reach, taking_long):
                continue
            handled += 1
            entry = {
                "id": new_id(12),
                "role": "assistant",
                "content": taking_long,
                "timestamp": iso(now_ms()),
                "provider": "none",
                "confidence": 0.0,
                "sources": [],
                "needsEscalation": True,
                "notice": True,
            }
            await self.sessions.append(snap.session_id, entry)
            await self.notifier.bot_message(
                snap.session_id,
                {
                    "sessionId": snap.session_id,
                    "messageId": entry["id"],
                    "message": taking_long,
                    "timestamp": entry["timestamp"],
                    "isBot": True,
                    "needsEscalation": True,
                    "confidence": 0.0,
                    "provider": "none",
                    "sources": [],
                    "notice": True,
                },
            )
            await self.notifier.to_agents(
                "queue-reminder",
                {
                    "sessionId": snap.session_id,
                    "waitingSince": iso(waiting),
                    "waitingSeconds": (now_ms() - waiting) // 1000,
                },
            )
        return handled
