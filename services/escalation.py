"""The escalation policy: when a person must take over.

Rules, each with a stable name used in replies, events and counters:
  keyword          the customer's message contains an ESCALATION_KEYWORDS word or phrase
                   (whole words, case-insensitive)
  low_confidence   the answer's confidence is below ESCALATION_CONFIDENCE_THRESHOLD
  technical_error  no responder could answer
  requested        the responder itself says a person is needed (a knowledge entry
                   marked `escalate`, or the model's own judgement)
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from services.responders.base import Reply


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class EscalationPolicy:
    def __init__(self, keywords: list[tuple[str, re.Pattern[str]]], threshold: float) -> None:
        self.keywords = keywords
        self.threshold = threshold

    def keyword_reasons(self, message: str) -> list[Reason]:
        return [
            Reason("keyword", word) for word, pattern in self.keywords if pattern.search(message)
        ]

    def reply_reasons(self, reply: Reply | None) -> list[Reason]:
        if reply is None:
            return [Reason("technical_error", "no responder could answer")]
        reasons = []
        if reply.confidence < self.threshold:
            reasons.append(
                Reason("low_confidence", f"confidence {reply.confidence:.2f} < {self.threshold:g}")
            )
        if reply.needs_human:
            reasons.append(
                Reason("requested", reply.human_reason or f"{reply.provider} asked for a person")
            )
        return reasons

    def evaluate(self, message: str, reply: Reply | None) -> list[Reason]:
        """All reasons to escalate this exchange; empty means the bot keeps it."""
        return self.keyword_reasons(message) + self.reply_reasons(reply)
