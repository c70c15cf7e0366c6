"""Token budgets: how much a session, and all instances together in a UTC day, may spend
on the remote language models.

- `SESSION_TOKEN_BUDGET`: prompt + completion tokens of one session, counted in the
  session's own hash (field `tokens`, so it shares the session's expiry and goes when the
  session is erased).
- `DAILY_TOKEN_BUDGET`: all sessions, all instances: one Redis counter per UTC day,
  `<prefix>budget:tokens:<YYYY-MM-DD>`, kept two days.

0 turns a budget off. The chain asks `spent()` once per message before any remote
provider and, when a budget is spent, skips every remote provider (the built-in `local`
responder answers, or the conversation escalates as a technical error); it records each
remote reply's usage with `charge()`. Concurrent messages may overshoot a budget by at
most one reply each: a check, not a lock.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.keys import session_key
from services.responders.base import Prompt, Usage

log = logging.getLogger(__name__)

SESSION = "session"
DAILY = "daily"
DAY_TTL_S = 2 * 24 * 3600

# KEYS: session hash; ARGV: tokens. Never creates a hash for a session that is gone.
CHARGE_SESSION = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
"""


def estimate(prompt: Prompt, text: str) -> Usage:
    """About four characters a token, for a provider that reports no usage."""
    sent = len(prompt.message) + sum(len(t.content) for t in prompt.history)
    sent += sum(len(s.snippet or "") + len(s.title) for s in prompt.context)
    return Usage(math.ceil(sent / 4), math.ceil(len(text) / 4))


class TokenBudget:
    """The session and daily token budgets over the shared Redis (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        session_budget: int,
        daily_budget: int,
        today: Callable[[], str] | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.session_budget = session_budget
        self.daily_budget = daily_budget
        self._today = today or (lambda: datetime.now(UTC).strftime("%Y-%m-%d"))
        self._charge = redis.register_script(CHARGE_SESSION)

    def session_key(self, session_id: str) -> str:
        return session_key(self.prefix, session_id)

    def daily_key(self, day: str | None = None) -> str:
        return f"{self.prefix}budget:tokens:{day or self._today()}"

    async def used(self, session_id: str | None) -> tuple[int, int]:
        """Tokens spent by the session (0 without one) and today by everyone."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.daily_key())
            if session_id:
                pipe.hget(self.session_key(session_id), "tokens")
            values = await pipe.execute()
        daily = int(values[0] or 0)
        session = int(values[1] or 0) if session_id else 0
        return session, daily

    async def spent(self, session_id: str | None) -> str | None:
        """The budget that is spent (`session` or `daily`), or None while both allow more
        (or Redis cannot tell: the message itself then fails to be stored, not here)."""
        if not self.session_budget and not self.daily_budget:
            return None
        try:
            session, daily = await self.used(session_id)
        except RedisError as exc:
            log.warning("token budget unreadable", extra={"error": type(exc).__name__})
            return None
        which = None
        if self.daily_budget and daily >= self.daily_budget:
            which = DAILY
        elif self.session_budget and session_id and session >= self.session_budget:
            which = SESSION
        if which:
            log.warning(
                "token budget spent: remote providers skipped",
                extra={
                    "budget": which,
                    "used": daily if which == DAILY else session,
                    "limit": self.daily_budget if which == DAILY else self.session_budget,
                },
            )
        return which

    async def charge(self, session_id: str | None, usage: Usage) -> None:
        """Add one remote reply's tokens to the session's and today's counts."""
        tokens = usage.total_tokens
        if tokens <= 0:
            return
        writes = [self._charge_day(tokens)]
        if session_id:  # another hash slot on a cluster: a second call, at the same time
            writes.append(self._charge(keys=[self.session_key(session_id)], args=[tokens]))
        for outcome in await asyncio.gather(*writes, return_exceptions=True):
            if isinstance(outcome, RedisError):
                log.warning("token usage not recorded", extra={"error": type(outcome).__name__})
            elif isinstance(outcome, BaseException):
                raise outcome

    async def _charge_day(self, tokens: int) -> None:
        key = self.daily_key()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incrby(key, tokens)
            pipe.expire(key, DAY_TTL_S)
            await pipe.execute()
