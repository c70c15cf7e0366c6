"""Each responder attempt of the current message (provider, model, outcome, latency,
tokens), collected by whoever asks the chain: the chain records into a context variable
that the caller opened, so concurrent messages never mix."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Attempt:
    provider: str
    model: str | None
    ok: bool
    latency_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "model": self.model,
            "ok": self.ok,
            "latencyMs": self.latency_ms,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
        }


_attempts: contextvars.ContextVar[list[Attempt] | None] = contextvars.ContextVar(
    "responder_attempts", default=None
)


def collect() -> list[Attempt]:
    """Start collecting this task's attempts; the list fills as the chain runs."""
    attempts: list[Attempt] = []
    _attempts.set(attempts)
    return attempts


def record(attempt: Attempt) -> None:
    attempts = _attempts.get()
    if attempts is not None:
        attempts.append(attempt)
