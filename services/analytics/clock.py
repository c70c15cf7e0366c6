"""Where analytics time comes from: an injectable clock (tests move it)."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]  # seconds since the epoch


def system_clock() -> float:
    return time.time()


def ms(clock: Clock) -> int:
    return int(clock() * 1000)
