"""A circuit breaker per provider: stop sending traffic to a provider that keeps failing,
let one probe through after a cool-down, close again when it answers.

States: closed (traffic flows) -> open after `threshold` consecutive failures, or
misconfigured at once after a failure that will not go away by itself (bad key, unknown
model) -> half_open once `cooldown` seconds have passed, when exactly one request (the
probe) may go -> closed if the probe answers, open again if it fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN, MISCONFIGURED = "closed", "open", "half_open", "misconfigured"


class CircuitBreaker:
    def __init__(
        self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.state = CLOSED
        self.consecutive_failures = 0
        self.opened_at = 0.0
        self.probing = False

    def available(self) -> bool:
        """Would `allow()` let a request through now? (Changes nothing.)"""
        if self.state == CLOSED:
            return True
        if self.state == HALF_OPEN:
            return not self.probing
        return self.clock() - self.opened_at >= self.cooldown

    def allow(self) -> bool:
        """May a request go to this provider now? Half-open lets exactly one through at a
        time; the caller must then report `success()`, `failure()` or `release()`."""
        if self.state == CLOSED:
            return True
        if self.state in (OPEN, MISCONFIGURED) and self.clock() - self.opened_at >= self.cooldown:
            self.state, self.probing = HALF_OPEN, False
        if self.state == HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def success(self) -> None:
        self.state, self.consecutive_failures, self.probing = CLOSED, 0, False

    def failure(self, *, misconfigured: bool = False) -> None:
        self.consecutive_failures += 1
        self.probing = False
        if misconfigured:
            self._open(MISCONFIGURED)
        elif self.state == HALF_OPEN or self.consecutive_failures >= self.threshold:
            self._open(OPEN)

    def release(self) -> None:
        """An attempt ended with neither success nor failure (cancelled): free the probe."""
        self.probing = False

    def retry_in(self) -> float | None:
        """Seconds until an open breaker lets a probe through; None when not open."""
        if self.state not in (OPEN, MISCONFIGURED):
            return None
        return max(0.0, self.opened_at + self.cooldown - self.clock())

    def _open(self, state: str) -> None:
        self.state, self.opened_at = state, self.clock()
