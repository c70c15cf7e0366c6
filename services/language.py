"""Which language a customer writes in: lingua's detector, offline, restricted to
DETECT_LANGUAGES, built once per process (its models take seconds and ~200 MB to load)
on a worker thread, never on the event loop.

Short, ambiguous texts ("ok", "refund") give no language (None) rather than a guess: the
top language must lead the next by MIN_MARGIN of confidence.
"""

from __future__ import annotations

import asyncio
import threading
from functools import lru_cache
from typing import Any

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

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
        return LanguageDetectorBuilder.from_languages(*languages).build()


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


class LanguageDetector:
    """Detects on a worker thread; the first call builds the detector (shared per process)."""

    def __init__(self, languages: list[str] | tuple[str, ...] = DEFAULT_LANGUAGES) -> None:
        self.codes = tuple(sorted({c.lower() for c in languages}))
        for code in self.codes:
            lingua_language(code)  # an unknown code fails at start-up, not at the first message

    @property
    def enabled(self) -> bool:
        return len(self.codes) >= 2

    async def detect(self, text: str) -> str | None:
        if not self.enabled:
            return None
        return await asyncio.to_thread(detect_sync, self.codes, text)
