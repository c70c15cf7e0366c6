"""The one small interface every responder implements (local, OpenAI, Gemini).

A responder turns a `Prompt` (the customer's message, recent history and the
knowledge retrieved for it) into a `Reply`. Streaming responders also yield
`Delta`s before the final `Reply`; the failover chain is the only caller that
cares about the difference.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from services.responders.tasks import Task, TaskResult


@dataclass(frozen=True, slots=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Source:
    """A knowledge entry used for a reply."""

    id: str
    title: str
    score: float
    url: str | None = None
    snippet: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Prompt:
    message: str
    history: tuple[Turn, ...] = ()
    context: tuple[Source, ...] = ()
    session_id: str | None = None
    language: str | None = None  # the customer's (detected), when known
    knowledge_language: str = "en"  # the knowledge base's (KNOWLEDGE_LANGUAGE)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    confidence: float
    provider: str
    sources: tuple[Source, ...] = ()
    needs_human: bool = False
    human_reason: str | None = None
    usage: Usage | None = None
    #: set by the chain's output check: `safety` when the model's text was withheld
    flag: str | None = None


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of the reply's text, as it streams."""

    text: str


@dataclass(frozen=True, slots=True)
class Reset:
    """The text streamed so far is void: a fallback responder takes over."""

    provider: str
    reason: str


@dataclass(slots=True)
class ResponderError(Exception):
    """A responder could not answer. `retryable` says whether trying again may help;
    `misconfigured` that it will not work until its settings change (key, model)."""

    provider: str
    reason: str
    retryable: bool = True
    retry_after: float | None = None
    detail: str = field(default="")
    misconfigured: bool = False

    def __str__(self) -> str:
        return f"{self.provider}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


class Responder(ABC):
    name: str
    #: answers in-process in about a millisecond: the chain gives it its turn even when
    #: the message's deadline has passed, so a customer still gets an answer
    in_process: bool = False

    @abstractmethod
    async def respond(self, prompt: Prompt) -> Reply:
        """Answer in one piece, or raise `ResponderError`."""

    async def stream(self, prompt: Prompt) -> AsyncGenerator[Delta | Reset | Reply, None]:
        """Yield text deltas then exactly one final `Reply` (a chain may also yield
        `Reset` when it switches responder mid-stream). Default: no deltas."""
        yield await self.respond(prompt)

    async def complete(self, task: Task) -> TaskResult:
        """Do a side job (services/responders/tasks.py): language models only."""
        raise ResponderError(self.name, "does no side jobs", retryable=False)

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients held by the responder."""
