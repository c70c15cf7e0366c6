"""Work taken off the request path: `put` accepts an item in this process and returns at
once; a background task hands whatever has gathered meanwhile to `process` as one batch, in
the order accepted, one batch at a time (the analytics' events, Socket.IO's fan-out).

Nothing accepted is lost on a graceful shutdown: `aclose` lets the task finish its batch
and processes what is left, and an item put after that is processed on the spot (so is one
put before `start`). A batch whose `process` raises is logged and dropped; `process` does
its own retrying. `flush` waits until everything accepted so far is processed (reports read
their own instance's writes). When more than `max_pending` wait, `put` helps drain first: a
slow Redis slows the senders down instead of growing the queue without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class BatchQueue(Generic[T]):
    def __init__(
        self,
        name: str,
        process: Callable[[list[T]], Awaitable[None]],
        *,
        max_batch: int = 500,
        max_pending: int = 10_000,
    ) -> None:
        self.name = name
        self.process = process
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._items: deque[T] = deque()
        self._lock = asyncio.Lock()  # one batch at a time, in order
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        return self._task is not None

    def __len__(self) -> int:
        return len(self._items)

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def put(self, item: T) -> None:
        """Accept one item; processed now when the queue is not running (or closed)."""
        if self._task is None:
            await self._guarded([item])
            return
        while len(self._items) >= self.max_pending:
            await self._drain_once()
        self._items.append(item)
        self._wake.set()

    async def flush(self) -> None:
        """Return once every item accepted before the call is processed."""
        while self._items:
            await self._drain_once()
        async with self._lock:  # a batch the task took before we looked
            pass

    async def aclose(self) -> None:
        """Stop the task after its batch, then process what is left."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def _run(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while self._items:
                await self._drain_once()

    async def _drain_once(self) -> None:
        async with self._lock:
            batch = [self._items.popleft() for _ in range(min(self.max_batch, len(self._items)))]
            if batch:
                await self._guarded(batch)

    async def _guarded(self, batch: list[T]) -> None:
        try:
            await self.process(batch)
        except Exception:
            log.exception("%s: a batch failed; %d items dropped", self.name, len(batch))
