"""The knowledge base's data types, shared by importers, engines and responders."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

EntryKind = Literal["intent", "faq", "passage"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing the bot knows: an intent with example questions, an FAQ row or an article
    passage."""

    id: str
    kind: EntryKind
    title: str
    answer: str
    questions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    escalate: bool = False
    url: str | None = None


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    entries: tuple[Entry, ...]
    name: str = "knowledge"

    def get(self, entry_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == entry_id), None)


@dataclass(frozen=True, slots=True)
class Hit:
    entry: Entry
    score: float


@dataclass(frozen=True, slots=True)
class Match:
    """What the engine makes of one message.

    `entry` is the best answerable entry, or None when the message is out of scope;
    `confidence` is calibrated: 0.7 means right about 70% of the time on held-out data.
    `hits` are the top entries and passages for grounding, best first. When the
    out-of-scope class wins, `entry` is None and `confidence` is the best entry's.
    """

    entry: Entry | None
    confidence: float
    hits: tuple[Hit, ...] = field(default_factory=tuple)
    top_confidence: float = 0.0  # the winning class's probability, out-of-scope included


class Engine(ABC):
    """Classifies and retrieves. Blocking CPU work: callers run it off the event loop."""

    name: str

    @classmethod
    @abstractmethod
    def train(cls, kb: KnowledgeBase, model_name: str | None = None) -> Engine:
        """Fit on the knowledge base (seconds at most; run in a worker thread)."""

    @abstractmethod
    def match(self, text: str, k: int = 3) -> Match:
        """Best entry with calibrated confidence, plus the top-k hits."""
