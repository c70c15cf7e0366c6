"""How ChatService tells live clients what happens, without knowing about Socket.IO.

The app wires a Socket.IO implementation (sockets/notifier.py); REST-only use and
tests get the silent one.
"""

from __future__ import annotations

from typing import Any, Protocol


class Notifier(Protocol):
    async def typing(self, session_id: str, is_typing: bool) -> None: ...

    async def customer_message(
        self, session_id: str, payload: dict[str, Any], *, skip_sid: str | None
    ) -> None: ...

    async def chunk(self, session_id: str, message_id: str, delta: str) -> None: ...

    async def reset(self, session_id: str, message_id: str) -> None: ...

    async def bot_message(self, session_id: str, payload: dict[str, Any]) -> None: ...

    async def escalation(self, session_id: str, payload: dict[str, Any]) -> None: ...


class SilentNotifier:
    async def typing(self, session_id: str, is_typing: bool) -> None:
        pass

    async def customer_message(
        self, session_id: str, payload: dict[str, Any], *, skip_sid: str | None
    ) -> None:
        pass

    async def chunk(self, session_id: str, message_id: str, delta: str) -> None:
        pass

    async def reset(self, session_id: str, message_id: str) -> None:
        pass

    async def bot_message(self, session_id: str, payload: dict[str, Any]) -> None:
        pass

    async def escalation(self, session_id: str, payload: dict[str, Any]) -> None:
        pass
