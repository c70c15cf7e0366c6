"""Work in flight (socket events being answered), so a stopping instance can let it finish.

Uvicorn itself waits for HTTP requests in flight; socket events run as tasks of their own
that it does not see. Every socket event runs inside `track()`; on SIGTERM the app calls
`begin_drain(grace)` and, once uvicorn has stopped, `wait_idle()` before it closes Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


class InFlight:
    """Counts running units of work and tells when none are left."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.count = 0
        self.deadline: float | None = None  # monotonic; set when draining starts
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def draining(self) -> bool:
        return self.deadline is not None

    def begin_drain(self) -> None:
        """From now on the instance is stopping: the grace period starts (once)."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.grace

    @contextlib.asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        self.count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def wait_idle(self) -> bool:
        """Wait for the work in flight, until the grace period ends; True when none is left."""
        self.begin_drain()
        assert self.deadline is not None
        remaining = self.deadline - time.monotonic()
        try:
            await asyncio.wait_for(self._idle.wait(), max(remaining, 0.0))
        except TimeoutError:
            return False
        return True
