"""Domain errors. Each knows its RFC 9457 problem; app.py maps them to HTTP in one place
and sockets/ to `error` events, so no handler writes its own 404."""

from __future__ import annotations

PROBLEM_BASE = "https://supportbot.dev/problems/"


class DomainError(Exception):
    status: int = 400
    code: str = "BAD_REQUEST"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.code.lower().replace("_", "-")


class SessionNotFound(DomainError):
    status, code, title = 404, "SESSION_NOT_FOUND", "Session not found"

    def __init__(self, session_id: str | None = None) -> None:
        super().__init__("Session not found or expired")


class InvalidMessage(DomainError):
    status, code, title = 400, "INVALID_MESSAGE", "Invalid message"


class InvalidPayload(DomainError):
    status, code, title = 400, "INVALID_PAYLOAD", "Invalid payload"


class Unauthorized(DomainError):
    status, code, title = 401, "UNAUTHORIZED", "Unauthorized"


class StorageUnavailable(DomainError):
    status, code, title = 503, "STORAGE_UNAVAILABLE", "Session storage unavailable"


class InvalidKnowledge(DomainError):
    status, code, title = 400, "INVALID_KNOWLEDGE", "Invalid knowledge base"


class KnowledgeConflict(DomainError):
    status, code, title = (
        409,
        "KNOWLEDGE_CONFLICT",
        "The change would leave the knowledge base unusable",
    )


class EntryNotFound(DomainError):
    status, code, title = 404, "ENTRY_NOT_FOUND", "Knowledge entry not found"
