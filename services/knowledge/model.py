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

    `entry` is the best answerable entry, or None when the out-of-scope class is likelier;
    `confidence` is calibrated: 0.7 means right about 70% of the time on held-out data.
    `hits` are the top entries and passages for grounding, best first. When the
    out-of-scope class wins, `entry` is None, `best` is still the best answerable entry and
    `confidence` its probability. `answer` decides what the bot says at a threshold.
    """

    entry: Entry | None
    confidence: float
    hits: tuple[Hit, ...] = field(default_factory=tuple)
    top_confidence: float = 0.0  # the winning class's probability, out-of-scope included
    best: Entry | None = None  # the best answerable entry, whichever class wins

    def answer(self, threshold: float) -> Entry | None:
        """The entry to answer with when the bot answers at `threshold` (the escalation
        threshold), or None for "out of scope": the reject option on the calibrated
        confidence (Chow's rule). The best entry is answered when the chance that it is right
        reaches the threshold, even where the out-of-scope class is likelier, which can only
        happen below 0.5 (at 0.5 and above it is the likeliest class whenever it reaches the
        threshold). Below the threshold it is the out-of-scope class's call: its entry, or
        None, and the low confidence escalates either way."""
        if self.entry is None and self.best is not None and self.confidence >= threshold:
            return self.best
        return self.entry


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
