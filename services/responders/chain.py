"""Failover, in one place: walk the responders in order until one answers.

Per attempt a timeout (and a shorter one to the first streamed token), per message an
overall deadline; retries with jittered exponential backoff for retryable failures only
(429 honours Retry-After; a timeout moves on at once unless no responder is left, since
the customer has already waited a whole attempt); a non-retryable failure (401/403, unknown model, a reply that
does not parse) moves on at once; a circuit breaker per provider skips one that keeps
failing. A provider that fails before its first chunk is replaced unseen; one that fails
mid-stream is followed by `Reset` and the fallback's answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.responders.base import Delta, Prompt, Reply, Reset, Responder, ResponderError
from services.responders.breaker import CircuitBreaker

log = logging.getLogger(__name__)


TIMEOUTS = ("timeout", "no first token in time")


class AllRespondersFailed(ResponderError):
    """No responder could answer; `detail` lists each one's reason."""


@dataclass
class Policy:
    attempt_timeout: float = 15.0
    first_token_timeout: float = 8.0
    deadline: float = 30.0
    max_retries: int = 2
    backoff_base: float = 0.2
    backoff_max: float = 2.0
    breaker_threshold: int = 3
    breaker_cooldown: float = 30.0


@dataclass
class Link:
    """A responder with its breaker and counters."""

    responder: Responder
    breaker: CircuitBreaker
    model: str | None = None
    attempts: int = 0
    successes: int = 0
    failures: int = 0
    retries: int = 0
    skipped: int = 0
    last_error: str | None = None
    last_error_at: str | None = None
    last_latency_ms: float | None = None
    total_latency_ms: float = 0.0
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})

    @property
    def name(self) -> str:
        return self.responder.name

    def status(self) -> dict[str, Any]:
        return {
            "configured": True, "model": self.model, "state": self.breaker.state,
            "lastError": self.last_error, "lastErrorAt": self.last_error_at,
            "attempts": self.attempts, "successes": self.successes, "failures": self.failures,
            "retries": self.retries, "skipped": self.skipped,
            "lastLatencyMs": self.last_latency_ms,
            "avgLatencyMs": round(self.total_latency_ms / self.successes, 2) if self.successes else None,
            "tokens": dict(self.tokens),
        }


class ResponderChain(Responder):
    name = "chain"

    def __init__(self, responders: list[Responder], policy: Policy | None = None) -> None:
        if not responders:
            raise ValueError("a chain needs at least one responder")
        self.policy = policy or Policy()
        self.links = [
            Link(r, CircuitBreaker(self.policy.breaker_threshold, self.policy.breaker_cooldown),
                 getattr(r, "model", None))
            for r in responders
        ]

    @property
    def names(self) -> list[str]:
        return [link.name for link in self.links]

    @property
    def needs_grounding(self) -> bool:
        """Language models need retrieved knowledge in their prompt; the local responder not."""
        return any(link.name != "local" for link in self.links)

    def status(self) -> dict[str, Any]:
        return {link.name: link.status() for link in self.links}

    async def respond(self, prompt: Prompt) -> Reply:
        async for event in self.stream(prompt):
            if isinstance(event, Reply):
                return event
        raise AllRespondersFailed(self.name, "no reply")  # pragma: no cover - stream always ends so

    async def stream(self, prompt: Prompt) -> AsyncIterator[Delta | Reset | Reply]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.policy.deadline
        reasons: list[str] = []
        for index, link in enumerate(self.links):
            if not link.breaker.allow():
                link.skipped += 1
                reasons.append(f"{link.name}: breaker {link.breaker.state}")
                continue
            for attempt in range(self.policy.max_retries + 1):
                remaining = deadline - loop.time()
                if link.responder.in_process:
                    remaining = max(remaining, self.policy.attempt_timeout)
                if remaining <= 0:
                    reasons.append(f"{link.name}: deadline passed")
                    break
                if attempt:
                    link.retries += 1
                link.attempts += 1
                streamed = False
                started = time.perf_counter()
                settled = False
                try:
                    async for event in self._attempt(link.responder, prompt, min(self.policy.attempt_timeout, remaining)):
                        if isinstance(event, Reply):
                            self._succeeded(link, event, started)
                            settled = True
                            yield event
                            return
                        if isinstance(event, Delta):
                            streamed = True
                        yield event
                    raise ResponderError(link.name, "stream ended without a reply", retryable=False)
                except ResponderError as exc:
                    settled = True
                    self._failed(link, exc)
                    reasons.append(f"{link.name}: {exc.reason}")
                    if streamed:
                        yield Reset(link.name, exc.reason)
                    if not exc.retryable or link.breaker.state != "closed":
                        break
                    if exc.reason in TIMEOUTS and index + 1 < len(self.links):
                        break  # the customer already waited a whole attempt: move on
                    if attempt == self.policy.max_retries:
                        break
                    wait = self._backoff(attempt, exc.retry_after)
                    if wait is None or loop.time() + wait >= deadline:
                        break  # waiting would cost the customer more than the next provider
                    await asyncio.sleep(wait)
                finally:
                    if not settled:  # cancelled mid-attempt: a half-open probe must not stay taken
                        link.breaker.release()
            if index + 1 < len(self.links):
                log.warning("switching responder", extra={"from": link.name, "to": self.links[index + 1].name,
                                                          "reason": reasons[-1] if reasons else None})
        raise AllRespondersFailed(self.name, "all responders failed", retryable=False, detail="; ".join(reasons))

    async def _attempt(self, responder: Responder, prompt: Prompt, timeout: float) -> AsyncIterator[Delta | Reply]:
        """One try, bounded by the attempt timeout and the time-to-first-token timeout."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + timeout
        events = responder.stream(prompt).__aiter__()
        first = True
        try:
            while True:
                budget = ends - loop.time()
                if first:
                    budget = min(budget, self.policy.first_token_timeout)
                try:
                    async with asyncio.timeout(max(budget, 0)):
                        event = await events.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    reason = "no first token in time" if first else "timeout"
                    raise ResponderError(responder.name, reason) from None
                except ResponderError:
                    raise
                except Exception as exc:  # a responder's bug must not take the chain down
                    log.warning("responder raised", exc_info=exc, extra={"provider": responder.name})
                    raise ResponderError(responder.name, "unexpected error", detail=type(exc).__name__) from exc
                first = False
                yield event
        finally:
            await events.aclose()

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        cap = min(self.policy.backoff_max, self.policy.backoff_base * 2**attempt)
        wait = random.uniform(cap / 2, cap)
        if retry_after is not None:
            if retry_after > self.policy.backoff_max:
                return None
            wait = max(wait, retry_after)
        return wait

    def _succeeded(self, link: Link, reply: Reply, started: float) -> None:
        link.breaker.success()
        link.successes += 1
        link.last_latency_ms = round((time.perf_counter() - started) * 1000, 2)
        link.total_latency_ms += link.last_latency_ms
        if reply.usage:
            link.tokens["prompt"] += reply.usage.prompt_tokens
            link.tokens["completion"] += reply.usage.completion_tokens

    def _failed(self, link: Link, exc: ResponderError) -> None:
        link.failures += 1
        link.last_error = exc.reason + (f" ({exc.detail})" if exc.detail else "")
        link.last_error_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        link.breaker.failure(misconfigured=exc.misconfigured)
        log.warning("responder failed", extra={
            "provider": link.name, "reason": exc.reason, "retryable": exc.retryable,
            "breaker": link.breaker.state,
        })

    async def aclose(self) -> None:
        for link in self.links:
            await link.responder.aclose()
