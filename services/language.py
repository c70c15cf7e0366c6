"""Which language a customer writes in: lingua's detector, offline, restricted to
DETECT_LANGUAGES. Its models take seconds and ~200 MB to load, and lingua holds the GIL
while it builds and detects (measured: a thread stalled the event loop for the whole
13 s build), so detection runs in one worker process per server process, shared by every
detector of that process, started and warmed at start-up.

Short, ambiguous texts ("ok", "refund") give no language (None) rather than a guess: the
top language must lead the next by MIN_MARGIN of confidence.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from typing import Any

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

PARENT_CHECK_SECONDS = 1.0
MIN_MARGIN = 0.2
MIN_LETTERS = 3
DEFAULT_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl")

_build_lock = threading.Lock()


def lingua_language(code: str) -> Language:
    try:
        return Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"{code!r} is not a language lingua knows") from exc


@lru_cache(maxsize=4)
def _detector(codes: tuple[str, ...]) -> Any:
    with _build_lock:  # one build at a time: two threads would both load the models
        languages = [lingua_language(c) for c in codes]
        builder = LanguageDetectorBuilder.from_languages(*languages)
        return builder.with_preloaded_language_models().build()


def detect_sync(codes: tuple[str, ...], text: str) -> str | None:
    """The ISO 639-1 code of `text`'s language, or None when unsure (blocking)."""
    if len(codes) < 2 or sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        return None
    values = _detector(codes).compute_language_confidence_values(text)
    if not values:
        return None
    top = values[0]
    runner_up = values[1].value if len(values) > 1 else 0.0
    if top.value - runner_up < MIN_MARGIN:
        return None
    code: str = top.language.iso_code_639_1.name.lower()
    return code


_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def exit_with_parent(parent: int) -> None:
    """The worker's initializer: it ends once the process that started it is gone, even
    after a SIGKILL that ran none of that process's exit handlers (else an orphan holding the
    models' 200-300 MB)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="exit with parent", daemon=True).start()


def worker_pool() -> ProcessPoolExecutor:
    """The one detection process of this process (spawned: no copy of our threads' state)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=exit_with_parent,
                initargs=(os.getpid(),),
            )
            atexit.register(_pool.shutdown, wait=False, cancel_futures=True)
        return _pool


class LanguageDetector:
    """Detects in the worker process; its first call there builds the detector."""

    def __init__(self, languages: list[str] | tuple[str, ...] = DEFAULT_LANGUAGES) -> None:
        self.codes = tuple(sorted({c.lower() for c in languages}))
        for code in self.codes:
            lingua_language(code)  # an unknown code fails at start-up, not at the first message

    @property
    def enabled(self) -> bool:
        return len(self.codes) >= 2

    async def warm(self) -> None:
        """Build the detector now (at start-up), so the first message does not wait for it."""
        await self.detect("warm up the detector")

    async def detect(self, text: str) -> str | None:
        if not self.enabled:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(worker_pool(), detect_sync, self.codes, text)
