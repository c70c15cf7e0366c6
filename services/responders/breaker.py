"""A circuit breaker per provider: stop sending traffic to a provider that keeps failing,
let one probe through after a cool-down, close again when it answers."""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN, MISCONFIGURED = "closed", "open", "half_open", "misconfigured"


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.state = CLOSED
        self.consecutive_failures = 0
        self.opened_at = 0.0
        self.probing = False

    def allow(self) -> bool:
        """May a request go to this provider now? (Half-open lets exactly one through.)"""
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

    def _open(self, state: str) -> None:
        self.state, self.opened_at = state, self.clock()
