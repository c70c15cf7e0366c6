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

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers (e.g. Retry-After)."""
        return {}

    @property
    def extensions(self) -> dict[str, object]:
        """Extra problem members (RFC 9457 extensions), e.g. the state that refused a step."""
        return {}


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


class InvalidRange(DomainError):
    status, code, title = 400, "INVALID_RANGE", "Invalid range"


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


class Forbidden(DomainError):
    status, code, title = 403, "FORBIDDEN", "Forbidden"


class InvalidCredentials(DomainError):
    status, code, title = 401, "INVALID_CREDENTIALS", "Wrong e-mail or password"


class TooManyAttempts(DomainError):
    """Login throttled; `retry_after` seconds until the window frees up."""

    status, code, title = 429, "TOO_MANY_ATTEMPTS", "Too many failed sign-ins"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(detail or f"too many failed sign-ins; try again in {self.retry_after} s")

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(DomainError):
    """A rate limit's window is full (services/guard/limits.py); `retry_after` seconds."""

    status, code, title = 429, "RATE_LIMITED", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(detail or f"too many requests; try again in {self.retry_after} s")

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}

    @property
    def extensions(self) -> dict[str, object]:
        return {"retryAfter": self.retry_after}


class AgentNotFound(DomainError):
    status, code, title = 404, "AGENT_NOT_FOUND", "Agent not found"


class AgentExists(DomainError):
    status, code, title = 409, "AGENT_EXISTS", "An agent with that e-mail already exists"


class TransitionRefused(DomainError):
    """A lifecycle step not allowed from the conversation's current state."""

    status, code, title = 409, "TRANSITION_REFUSED", "Not allowed in the conversation's state"

    def __init__(self, detail: str, *, status: str, holder: dict[str, str] | None = None) -> None:
        self.current_status = status
        self.holder = holder
        super().__init__(detail)

    @property
    def extensions(self) -> dict[str, object]:
        return {"currentStatus": self.current_status, "holder": self.holder}


class NothingToRate(DomainError):
    status, code, title = 409, "NOTHING_TO_RATE", "There is nothing to rate"
