"""How services tell live clients what happens, without knowing about Socket.IO.

The app wires a Socket.IO implementation (sockets/notifier.py); REST-only use and
tests get this base class, which tells nobody.

Two audiences: the customer's session room, and the agents. Agent events go either to
every agent (queue and lifecycle news) or, when `session_id` is given, to the agents
concerned with that conversation: its holder, the admins, and whoever is watching it.
"""

from __future__ import annotations

from typing import Any


class Notifier:
    async def typing(self, session_id: str, is_typing: bool) -> None:
        """The bot is (or stopped) composing a reply."""

    async def customer_message(
        self, session_id: str, payload: dict[str, Any], *, skip_sid: str | None
    ) -> None:
        """The customer's own message, echoed to the session's other tabs."""

    async def chunk(self, session_id: str, message_id: str, delta: str) -> None:
        """A piece of the bot's reply while it streams."""

    async def reset(self, session_id: str, message_id: str) -> None:
        """Discard the streamed pieces: another responder takes over."""

    async def bot_message(self, session_id: str, payload: dict[str, Any]) -> None:
        """The bot's whole reply."""

    async def escalation(self, session_id: str, payload: dict[str, Any]) -> None:
        """A conversation needs a person (to the session and every agent)."""

    async def to_customer(
        self, session_id: str, event: str, payload: dict[str, Any], *, skip_sid: str | None = None
    ) -> None:
        """Any other event for the customer's session room."""

    async def to_agents(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        session_id: str | None = None,
        holder: str | None = None,
    ) -> None:
        """An event for every agent, or for those concerned with `session_id`."""

    async def to_agent(self, agent_id: str, event: str, payload: dict[str, Any]) -> None:
        """An event for one agent's consoles only (e.g. an offer)."""


SilentNotifier = Notifier
