"""Failover, in one place: walk the responders in order until one answers.

Rules, for each message:

- An overall deadline (`Policy.deadline`). A responder that answers in-process (the
  embedded one) still gets its turn after the deadline, so a customer gets an answer.
- Per attempt a timeout; when streaming also a shorter one to the first chunk.
- A circuit breaker per provider (see `breaker.py`): an open one is skipped at once.
- A failure that trying again will not fix (401/403, unknown model, a reply that does
  not parse) moves on at once; one that comes from the provider's configuration also
  marks it misconfigured.
- A retryable failure (timeout, connection error, 429, 5xx) is retried with jittered
  exponential backoff, up to `max_retries` times, unless it would not help the customer:
  a timeout or a failure mid-stream moves on when a fallback is available (the customer
  already waited a whole attempt, or saw text vanish); a `Retry-After` longer than
  `backoff_max` moves on when a fallback is available, and is honoured (within the
  deadline) when none is.
- Streaming: a provider that fails before its first chunk is replaced unseen; one that
  fails mid-stream is followed by `Reset(provider, reason)` and the fallback's stream.

Two guards, consulted here and nowhere else (services/guard/):

- Token budgets (`TokenBudget`): before the walk, once per message; when the session's or
  the day's budget is spent every remote provider is skipped (reason `token budget spent`)
  and only an in-process responder may answer. Each remote reply's usage is charged.
- The output check (`OutputGuard`): a reply that leaks the system prompt or its canary
  becomes `SAFE_ANSWER` with `flag="safety"`; while streaming, text is held back until it
  is clear of a leak.

Side jobs (`complete`: a handoff summary, a drafted reply) walk the same responders with the
same breakers, retries and budgets, under the task's own time limit; responders that answer
in-process do no side jobs and are passed by.

Every attempt, retry, failure, skip and switch is counted (see `status()`) and logged
with its reason; message text never is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from services import tracing
from services.guard.budget import TokenBudget, estimate
from services.guard.output import SAFE_ANSWER, SAFETY, OutputGuard, StreamScreen
from services.metrics import Metrics
from services.responders.attempts import Attempt
from services.responders.attempts import record as record_attempt
from services.responders.base import Delta, Prompt, Reply, Reset, Responder, ResponderError
from services.responders.breaker import CLOSED, CircuitBreaker
from services.responders.tasks import Task, TaskResult

log = logging.getLogger(__name__)

TIMEOUT = "timeout"
FIRST_TOKEN_TIMEOUT = "no first token in time"
TIMEOUTS = (TIMEOUT, FIRST_TOKEN_TIMEOUT)


class AllRespondersFailed(ResponderError):
    """No responder could answer. `reasons` maps each responder to its last reason;
    `detail` lists every failure in order."""

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        super().__init__(
            "chain",
            "all responders failed",
            retryable=False,
            detail="; ".join(f"{name}: {reason}" for name, reason in failures) or "no responder",
        )
        self.reasons: dict[str, str] = dict(failures)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` (seconds or an HTTP date)."""
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


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


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Link:
    """A responder in the chain, with its breaker and counters."""

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
    last_success_at: str | None = None
    last_latency_ms: float | None = None
    total_latency_ms: float = 0.0
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})

    @property
    def name(self) -> str:
        return self.responder.name

    def status(self) -> dict[str, Any]:
        return {
            "configured": True,
            "model": self.model,
            "state": self.breaker.state,
            "consecutiveFailures": self.breaker.consecutive_failures,
            "lastError": self.last_error,
            "lastErrorAt": self.last_error_at,
            "lastSuccessAt": self.last_success_at,
            "attempts": self.attempts,
            "successes": self.successes,
            "failures": self.failures,
            "retries": self.retries,
            "skipped": self.skipped,
            "lastLatencyMs": self.last_latency_ms,
            "avgLatencyMs": round(self.total_latency_ms / self.successes, 2)
            if self.successes
            else None,
            "tokens": dict(self.tokens),
        }


class ResponderChain(Responder):
    """The responders in failover order; itself a Responder."""

    name = "chain"

    def __init__(
        self,
        responders: Sequence[Responder],
        policy: Policy | None = None,
        *,
        unconfigured: Mapping[str, str | None] | None = None,
        budget: TokenBudget | None = None,
        guard: OutputGuard | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """`unconfigured`: providers left out for want of settings (name -> model), shown
        in `status()` so the page can say so. `budget`, `guard`: see the module docstring;
        `metrics` counts what they stop."""
        if not responders:
            raise ValueError("a chain needs at least one responder")
        self.policy = policy or Policy()
        self.unconfigured = dict(unconfigured or {})
        self.budget = budget
        self.guard = guard
        self.metrics = metrics or Metrics()
        self.links = [
            Link(
                r,
                CircuitBreaker(self.policy.breaker_threshold, self.policy.breaker_cooldown),
                getattr(r, "model", None),
            )
            for r in responders
        ]

    @property
    def names(self) -> list[str]:
        return [link.name for link in self.links]

    @property
    def needs_grounding(self) -> bool:
        """Language models need retrieved knowledge in their prompt; the local responder not."""
        return any(link.name != "local" for link in self.links)

    def status(self) -> dict[str, dict[str, Any]]:
        """Per responder, in failover order: breaker state, last error, counts, latency, tokens;
        then the providers left out for want of settings (`configured: false`)."""
        status = {link.name: link.status() for link in self.links}
        for name, model in self.unconfigured.items():
            status.setdefault(
                name, {"configured": False, "model": model, "state": "not_configured"}
            )
        return status

    async def respond(self, prompt: Prompt) -> Reply:
        """The whole reply (each responder's non-streaming call), or AllRespondersFailed."""
        async with aclosing(self._run(prompt, streaming=False)) as events:
            async for event in events:
                if isinstance(event, Reply):
                    return event
        raise AllRespondersFailed([])  # pragma: no cover - _run ends with a Reply or raises

    def stream(self, prompt: Prompt) -> AsyncGenerator[Delta | Reset | Reply, None]:
        """Deltas as they arrive, a Reset when a provider fails mid-stream (its text so far
        is void), then exactly one Reply; or AllRespondersFailed."""
        return self._run(prompt, streaming=True)

    async def complete(self, task: Task) -> TaskResult:
        """A side job's result from the first language model that does it within
        `task.timeout`, or AllRespondersFailed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + task.timeout
        failures: list[tuple[str, str]] = []
        spent = await self._budget_spent(Prompt(task.user, session_id=task.session_id))
        for index, link in enumerate(self.links):
            if link.responder.in_process:
                continue
            if spent:
                self._skip(link, f"token budget spent ({spent})", failures, None)
                continue
            if not link.breaker.allow():
                self._skip(link, f"breaker {link.breaker.state}", failures, None)
                continue
            attempt = 0
            while True:
                timeout = min(self.policy.attempt_timeout, deadline - loop.time())
                if timeout <= 0:
                    link.breaker.release()
                    self._skip(link, "deadline passed", failures, None)
                    break
                link.attempts += 1
                link.retries += bool(attempt)
                started = time.perf_counter()
                error: ResponderError | None = None
                try:
                    async with asyncio.timeout(timeout):
                        result = await link.responder.complete(task)
                except TimeoutError:
                    error = ResponderError(link.name, TIMEOUT)
                except ResponderError as exc:
                    error = exc
                except Exception as exc:  # a responder's bug must not take the chain down
                    error = self._unexpected(link.responder, exc)
                except BaseException:  # cancelled mid-attempt: free a half-open probe
                    link.breaker.release()
                    raise
                if error is None:
                    usage = result.usage
                    self._succeeded(link, Reply("", 1.0, link.name, usage=usage), started, attempt)
                    if self.budget is not None:
                        spent_text = json.dumps(result.data)
                        await self.budget.charge(
                            task.session_id, usage or estimate(Prompt(task.user), spent_text)
                        )
                    return result
                self._failed(link, error, attempt)
                failures.append((link.name, error.reason))
                wait = self._retry_wait(link, error, attempt, deadline, index, False)
                if wait is None:
                    break
                await asyncio.sleep(wait)
                attempt += 1
        log.warning(
            "no responder did the side job", extra={"task": task.name, "reasons": dict(failures)}
        )
        raise AllRespondersFailed(failures)

    async def aclose(self) -> None:
        for link in self.links:
            try:
                await link.responder.aclose()
            except Exception as exc:  # closing one client must not leave the others open
                log.warning(
                    "responder did not close cleanly", exc_info=exc, extra={"provider": link.name}
                )

    # -- the failover walk ------------------------------------------------------------
    async def _run(
        self, prompt: Prompt, *, streaming: bool
    ) -> AsyncGenerator[Delta | Reset | Reply, None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.policy.deadline
        failures: list[tuple[str, str]] = []
        left: tuple[Link, str] | None = None  # the responder we moved on from, and why
        spent = await self._budget_spent(prompt)
        for index, link in enumerate(self.links):
            if spent and not link.responder.in_process:
                left = self._skip(link, f"token budget spent ({spent})", failures, left)
                continue
            if self._remaining(link, deadline) <= 0:
                left = self._skip(link, "deadline passed", failures, left)
                continue
            if not link.breaker.allow():
                left = self._skip(link, f"breaker {link.breaker.state}", failures, left)
                continue
            if left is not None:
                self.metrics.failovers[(left[0].name, link.name)] += 1
                log.info(
                    "switching responder",
                    extra={
                        "from_provider": left[0].name,
                        "to_provider": link.name,
                        "reason": left[1],
                    },
                )
                left = None
            attempt = 0
            while True:
                link.attempts += 1
                if attempt:
                    link.retries += 1
                log.debug(
                    "responder attempt",
                    extra={"provider": link.name, "attempt": attempt + 1, "streaming": streaming},
                )
                timeout = min(self.policy.attempt_timeout, self._remaining(link, deadline))
                started = time.perf_counter()
                streamed = settled = False
                error: ResponderError | None = None
                screen = StreamScreen(self.guard) if self.guard else None
                span = tracing.start_span(
                    "responder attempt",
                    {
                        "gen_ai.provider.name": link.name,
                        "gen_ai.request.model": link.model or link.name,
                        "supportbot.attempt": attempt + 1,
                        "supportbot.streaming": streaming,
                    },
                )
                try:
                    async with aclosing(
                        self._attempt(link.responder, prompt, timeout, streaming)
                    ) as events:
                        async for event in events:
                            if isinstance(event, Reply):
                                settled = True
                                self._succeeded(link, event, started, attempt)
                                _attempt_ended(span, "success", event)
                                event = await self._settle(link, prompt, event)
                                if screen and event.flag is None and (rest := screen.rest()):
                                    yield Delta(rest)
                                yield event
                                return
                            if screen and isinstance(event, Delta):
                                if not (shown := screen.feed(event.text)):
                                    continue
                                event = Delta(shown)
                            streamed = True
                            yield event
                    raise ResponderError(link.name, "stream ended without a reply", retryable=False)
                except ResponderError as exc:
                    settled = True
                    error = exc
                    self._failed(link, exc, attempt, started)
                    _attempt_ended(span, "failure", reason=exc.reason)
                finally:
                    if not settled:  # the caller went away mid-attempt: free a half-open probe
                        link.breaker.release()
                        _attempt_ended(span, "cancelled")
                failures.append((link.name, error.reason))
                if streamed:
                    yield Reset(link.name, error.reason)
                wait = self._retry_wait(link, error, attempt, deadline, index, streamed)
                if wait is None:
                    break
                log.info(
                    "retrying responder",
                    extra={
                        "provider": link.name,
                        "attempt": attempt + 2,
                        "wait_s": round(wait, 3),
                        "reason": error.reason,
                    },
                )
                await asyncio.sleep(wait)
                attempt += 1
            left = (link, error.reason)
        log.error("all responders failed", extra={"reasons": dict(failures)})
        raise AllRespondersFailed(failures)

    async def _budget_spent(self, prompt: Prompt) -> str | None:
        """The token budget that is spent (`session`, `daily`), counted; or None."""
        if self.budget is None or all(link.responder.in_process for link in self.links):
            return None
        spent = await self.budget.spent(prompt.session_id)
        if spent:
            self.metrics.budget_skips[spent] += 1
        return spent

    async def _settle(self, link: Link, prompt: Prompt, reply: Reply) -> Reply:
        """Charge a remote reply to the budgets; withhold one that leaks the system prompt."""
        if link.responder.in_process:
            return reply
        if self.budget is not None:
            await self.budget.charge(prompt.session_id, reply.usage or estimate(prompt, reply.text))
        leak = self.guard.leak(reply.text) if self.guard else None
        if leak is None:
            return reply
        self.metrics.safety_flags[leak] += 1
        log.warning("reply withheld: it leaks the %s", leak, extra={"provider": link.name})
        return Reply(SAFE_ANSWER, 1.0, reply.provider, usage=reply.usage, flag=SAFETY)

    def _remaining(self, link: Link, deadline: float) -> float:
        remaining = deadline - asyncio.get_running_loop().time()
        if link.responder.in_process:  # answers in about a millisecond: always worth it
            remaining = max(remaining, self.policy.attempt_timeout)
        return remaining

    @staticmethod
    def _skip(
        link: Link, reason: str, failures: list[tuple[str, str]], left: tuple[Link, str] | None
    ) -> tuple[Link, str]:
        """Pass a responder by without trying it; the switch is logged at the next one tried."""
        link.skipped += 1
        failures.append((link.name, reason))
        log.info("responder skipped", extra={"provider": link.name, "reason": reason})
        return left if left is not None else (link, reason)

    async def _attempt(
        self,
        responder: Responder,
        prompt: Prompt,
        timeout: float,  # noqa: ASYNC109 - a per-attempt budget this generator enforces itself, per chunk
        streaming: bool,
    ) -> AsyncGenerator[Delta | Reset | Reply, None]:
        """One try, bounded by the attempt timeout (and, streaming, the first-chunk one)."""
        if not streaming:
            try:
                async with asyncio.timeout(max(timeout, 0)):
                    reply = await responder.respond(prompt)
            except TimeoutError:
                raise ResponderError(responder.name, TIMEOUT) from None
            except ResponderError:
                raise
            except Exception as exc:  # a responder's bug must not take the chain down
                raise self._unexpected(responder, exc) from exc
            yield reply
            return
        loop = asyncio.get_running_loop()
        ends = loop.time() + timeout
        first = True
        async with aclosing(responder.stream(prompt)) as events:
            while True:
                budget = ends - loop.time()
                waiting_first = first and self.policy.first_token_timeout < budget
                if waiting_first:
                    budget = self.policy.first_token_timeout
                try:
                    async with asyncio.timeout(max(budget, 0)):
                        event = await anext(events)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    reason = FIRST_TOKEN_TIMEOUT if waiting_first else TIMEOUT
                    raise ResponderError(responder.name, reason) from None
                except ResponderError:
                    raise
                except Exception as exc:  # a responder's bug must not take the chain down
                    raise self._unexpected(responder, exc) from exc
                if isinstance(event, Reset):  # a nested chain's switch: its text so far is void
                    first = True
                    yield event
                    continue
                first = False
                yield event

    @staticmethod
    def _unexpected(responder: Responder, exc: Exception) -> ResponderError:
        log.warning("responder raised", exc_info=exc, extra={"provider": responder.name})
        return ResponderError(
            responder.name, "unexpected error", retryable=False, detail=type(exc).__name__
        )

    def _retry_wait(
        self,
        link: Link,
        exc: ResponderError,
        attempt: int,
        deadline: float,
        index: int,
        streamed: bool,
    ) -> float | None:
        """Seconds to wait before trying `link` again, or None to move on."""
        if not exc.retryable or link.breaker.state != CLOSED or attempt >= self.policy.max_retries:
            return None
        fallback = any(later.breaker.available() for later in self.links[index + 1 :])
        if (exc.reason in TIMEOUTS or streamed) and fallback:
            return None  # the customer already waited a whole attempt, or watched text vanish
        cap = min(self.policy.backoff_max, self.policy.backoff_base * 2**attempt)
        wait = random.uniform(cap / 2, cap)  # jitter: retries from many sessions spread out
        if exc.retry_after is not None:
            if exc.retry_after > self.policy.backoff_max and fallback:
                return None  # the next provider answers sooner than this one will
            wait = max(wait, exc.retry_after)
        if asyncio.get_running_loop().time() + wait >= deadline:
            return None
        return wait

    def _succeeded(self, link: Link, reply: Reply, started: float, attempt: int) -> None:
        was = link.breaker.state
        link.breaker.success()
        if was != CLOSED:
            log.info("breaker closed", extra={"provider": link.name, "was": was})
        link.successes += 1
        link.last_success_at = _now_iso()
        seconds = time.perf_counter() - started
        self.metrics.provider_latency.observe((link.name, "success"), seconds)
        link.last_latency_ms = round(seconds * 1000, 2)
        link.total_latency_ms += link.last_latency_ms
        usage = reply.usage
        record_attempt(
            Attempt(
                link.name,
                link.model,
                True,
                link.last_latency_ms,
                usage.prompt_tokens if usage else 0,
                usage.completion_tokens if usage else 0,
            )
        )
        if usage:
            link.tokens["prompt"] += usage.prompt_tokens
            link.tokens["completion"] += usage.completion_tokens
        log.info(
            "responder answered",
            extra={
                "provider": link.name,
                "attempt": attempt + 1,
                "latency_ms": link.last_latency_ms,
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
            },
        )

    def _failed(
        self, link: Link, exc: ResponderError, attempt: int, started: float | None = None
    ) -> None:
        if started is not None:
            elapsed = time.perf_counter() - started
            self.metrics.provider_latency.observe((link.name, "failure"), elapsed)
            record_attempt(Attempt(link.name, link.model, False, round(elapsed * 1000, 2)))
        link.failures += 1
        link.last_error = exc.reason + (f" ({exc.detail})" if exc.detail else "")
        link.last_error_at = _now_iso()
        was = link.breaker.state
        link.breaker.failure(misconfigured=exc.misconfigured)
        log.warning(
            "responder failed",
            extra={
                "provider": link.name,
                "attempt": attempt + 1,
                "reason": exc.reason,
                "detail": exc.detail or None,
                "retryable": exc.retryable,
                "retry_after": exc.retry_after,
                "breaker": link.breaker.state,
            },
        )
        if link.breaker.state != was and link.breaker.state != CLOSED:
            log.warning(
                "breaker opened",
                extra={
                    "provider": link.name,
                    "state": link.breaker.state,
                    "cooldown_s": link.breaker.cooldown,
                    "consecutive_failures": link.breaker.consecutive_failures,
                },
            )


def _attempt_ended(
    span: Any, outcome: str, reply: Reply | None = None, *, reason: str | None = None
) -> None:
    """Close an attempt's span with its outcome and token counts (never the text)."""
    span.set_attribute("supportbot.outcome", outcome)
    if reason is not None:
        span.set_attribute("supportbot.failure_reason", reason)
        tracing.fail(span, reason)
    usage = reply.usage if reply is not None else None
    if usage:
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
    span.end()
