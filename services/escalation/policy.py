"""The escalation policy: when a person must take over.

Rules, each with a stable name used in replies, events and counters (and its settings):
  requested         the customer asks for a person ("can I talk to a human", "agent",
                    "real person please", ...: the built-in matcher plus
                    ESCALATION_REQUEST_PHRASES), or the responder itself says a person is
                    needed (a knowledge entry marked `escalate`, or the model's judgement)
  frustration       anger, insults or strong negative sentiment: VADER's compound score at
                    or below ESCALATION_FRUSTRATION_THRESHOLD, or our own insult lexicon
  repeated_failure  ESCALATION_MAX_FAILURES weak answers in a row in this episode (confidence
                    below ESCALATION_FAILURE_CONFIDENCE, or a "not sure" answer), or the
                    customer repeating the question just answered (content-word similarity
                    at least ESCALATION_REPEAT_SIMILARITY)
  keyword           the message contains an ESCALATION_KEYWORDS word or phrase
                    (whole words, case-insensitive)
  low_confidence    the answer's confidence is below ESCALATION_CONFIDENCE_THRESHOLD
  technical_error   no responder could answer
  safety            the model's reply leaked the system prompt or its canary and was
                    replaced by a safe answer (services/guard/output.py)
  unsupported_language  the built-in engine (which reads only KNOWLEDGE_LANGUAGE) got a
                    message in another language for which it has no catalogue to say so
                    politely (services/i18n); with a catalogue it says so and keeps it

Separately, `priority` puts a conversation whose message has an ESCALATION_PRIORITY_KEYWORDS
word ahead in the agents' queue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from services.escalation.matcher import RequestMatcher
from services.escalation.sentiment import FrustrationDetector
from services.escalation.text import content_tokens, normalise, similarity
from services.responders.base import Reply

if TYPE_CHECKING:
    from services.config import Settings

# An answer that admits it does not know ("I'm not sure", "I don't have information on that").
UNSURE = re.compile(
    r"\b(?:not\s(?:sure|certain)|(?:dont|do\snot)\sknow|(?:dont|do\snot)\shave\s(?:any\s)?"
    r"(?:information|info|details)|no\sinformation|(?:cant|cannot|can\snot|unable\sto)\s"
    r"(?:help\swith|answer|find)|couldnt\sfind|could\snot\sfind)\b"
)
MIN_REPEAT_WORDS = 3  # "hi" twice, "yes" twice, "thanks" twice are not a repeated question


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def whole_words(words: Iterable[str]) -> list[tuple[str, re.Pattern[str]]]:
    """A whole-word, case-insensitive pattern for each word or phrase."""
    return [
        (
            word,
            re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, word.split())) + r"(?!\w)", re.I),
        )
        for word in (w.lower().strip() for w in words)
        if word
    ]


class EscalationPolicy:
    """All reasons to hand a conversation to a person; see the module docstring."""

    def __init__(
        self,
        keywords: list[tuple[str, re.Pattern[str]]],
        threshold: float,
        *,
        request_phrases: Iterable[str] = (),
        frustration_threshold: float = -0.7,
        max_failures: int = 2,
        failure_confidence: float = 0.65,
        repeat_similarity: float = 0.8,
        priority_keywords: Iterable[str] = ("urgent", "emergency"),
    ) -> None:
        self.keywords = keywords
        self.threshold = threshold
        self.requests = RequestMatcher(request_phrases)
        self.frustration = FrustrationDetector(frustration_threshold)
        self.max_failures = max_failures
        self.failure_confidence = failure_confidence
        self.repeat_similarity = repeat_similarity
        self.priority_keywords = whole_words(priority_keywords)

    @classmethod
    def from_settings(cls, s: Settings) -> EscalationPolicy:
        return cls(
            s.escalation_patterns,
            s.escalation_confidence_threshold,
            request_phrases=s.escalation_request_phrases,
            frustration_threshold=s.escalation_frustration_threshold,
            max_failures=s.escalation_max_failures,
            failure_confidence=s.escalation_failure_confidence,
            repeat_similarity=s.escalation_repeat_similarity,
            priority_keywords=s.escalation_priority_keywords,
        )

    @property
    def lookback(self) -> int:
        """How many earlier transcript entries of the episode `evaluate` wants to see."""
        return max(2, 2 * self.max_failures)

    # -- the rules ---------------------------------------------------------------------
    def keyword_reasons(self, message: str) -> list[Reason]:
        return [
            Reason("keyword", word) for word, pattern in self.keywords if pattern.search(message)
        ]

    def message_reasons(self, message: str) -> list[Reason]:
        """The rules that read only the customer's message: requested, frustration, keyword."""
        reasons = []
        if found := self.requests.find(message):
            reasons.append(Reason("requested", f"the customer asked for a person: {found.text!r}"))
        if frustrated := self.frustration.find(message):
            reasons.append(Reason("frustration", frustrated.detail))
        return reasons + self.keyword_reasons(message)

    @staticmethod
    def language_reasons(language: str, knowledge_language: str) -> list[Reason]:
        """`unsupported_language`: the built-in engine cannot read the customer's language."""
        detail = f"the customer writes {language}; the knowledge base is in {knowledge_language}"
        return [Reason("unsupported_language", detail)]

    def reply_reasons(self, reply: Reply | None) -> list[Reason]:
        if reply is None:
            return [Reason("technical_error", "no responder could answer")]
        reasons = []
        if reply.flag == "safety":
            reasons.append(Reason("safety", "the reply was withheld by the output check"))
        if reply.confidence < self.threshold:
            reasons.append(
                Reason("low_confidence", f"confidence {reply.confidence:.2f} < {self.threshold:g}")
            )
        if reply.needs_human:
            reasons.append(
                Reason("requested", reply.human_reason or f"{reply.provider} asked for a person")
            )
        return reasons

    def failure_reasons(
        self, message: str, reply: Reply | None, previous: Sequence[Mapping[str, Any]]
    ) -> list[Reason]:
        """repeated_failure: weak answers in a row, or the question just answered again."""
        if reply is None:
            return []
        answers = [e for e in previous if e.get("role") == "assistant" and not e.get("notice")]
        if self.max_failures > 0 and self.weak(reply.confidence, reply.text):
            streak = 1
            for entry in reversed(answers):
                if not self.weak(float(entry.get("confidence", 1.0)), str(entry.get("content"))):
                    break
                streak += 1
            if streak >= self.max_failures:
                return [Reason("repeated_failure", f"{streak} weak answers in a row")]
        asked = [e for e in previous if e.get("role") in ("user", "assistant")]
        if (
            self.repeat_similarity > 0
            and len(asked) >= 2
            and asked[-1]["role"] == "assistant"
            and asked[-2]["role"] == "user"
            and len(content_tokens(str(asked[-2].get("content", "")))) >= MIN_REPEAT_WORDS
        ):
            score = similarity(message, str(asked[-2]["content"]))
            if score >= self.repeat_similarity:
                return [
                    Reason("repeated_failure", f"asked the question just answered ({score:.2f})")
                ]
        return []

    def weak(self, confidence: float, text: str) -> bool:
        """An answer that did not help: not confident enough, or it says it does not know."""
        return confidence < self.failure_confidence or bool(UNSURE.search(normalise(text)))

    def evaluate(
        self, message: str, reply: Reply | None, previous: Sequence[Mapping[str, Any]] = ()
    ) -> list[Reason]:
        """All reasons to escalate this exchange; empty means the bot keeps it.

        `previous` is this episode's transcript before the message (oldest first, as stored:
        assistant entries carry `confidence`), at least `lookback` entries of it when there
        are that many.
        """
        reasons = self.message_reasons(message)
        for reason in self.reply_reasons(reply):
            if reason.rule == "requested" and any(r.rule == "requested" for r in reasons):
                continue  # the customer's own request says it already
            reasons.append(reason)
        return reasons + self.failure_reasons(message, reply, previous)

    def priority(self, message: str) -> int:
        """1 when the message has an ESCALATION_PRIORITY_KEYWORDS word (ahead in the queue)."""
        return 1 if any(p.search(message) for _, p in self.priority_keywords) else 0
