"""A sweep run every few seconds in the background (handoff timeouts, routing offers,
retention): started and stopped with the app, safe on every instance at once because each
sweep's own steps are atomic in Redis. A failing sweep is logged and tried again next time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval: float, sweep: Callable[[], Awaitable[Any]]) -> None:
        self.name = name
        self.interval = interval
        self.sweep = sweep
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception:
                log.warning(
                    "%s failed; trying again in %.1f s", self.name, self.interval, exc_info=True
                )

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
