"""Questions the bot could not answer (low confidence, out of scope, or escalated as
`repeated_failure`): kept redacted, only while ANALYTICS_STORE_QUESTIONS is on, for
ANALYTICS_RETENTION_DAYS; reported grouped by similar wording.

Grouping: TF-IDF over character n-grams (3-5, within words) of the redacted texts, then
each question joins the first group whose representative is at least SIMILAR (cosine),
largest groups first; the representative is the group's most central question.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from services.analytics.store import AnalyticsStore
from services.guard.redact import redact
from services.sessions import iso, new_id

SIMILAR = 0.45
MAX_TEXT = 500
EXAMPLES = 5


class GapRecorder:
    def __init__(
        self, store: AnalyticsStore, *, enabled: bool, region: str, retention_ms: int
    ) -> None:
        self.store = store
        self.enabled = enabled
        self.region = region
        self.retention_ms = retention_ms

    async def add(self, question: str, reason: str, at: int) -> None:
        await self.add_many([(question, reason, at)])

    async def add_many(self, questions: list[tuple[str, str, int]]) -> None:
        """Questions (text, reason, ms), redacted, in one round trip."""
        if not self.enabled:
            return
        records = []
        for question, reason, at in questions:
            if text := " ".join(question.split())[:MAX_TEXT]:
                clean = redact(text, self.region)
                records.append((new_id(12), {"text": clean, "reason": reason, "at": at}, at))
        if records:
            await self.store.add_questions(records)

    async def expire(self, now: int) -> int:
        return await self.store.forget_questions(now - self.retention_ms)


@dataclass
class Group:
    members: list[int]
    center: int = 0


def group(texts: list[str]) -> list[Group]:
    """Indices of `texts` grouped by similar wording (CPU work: call it off the loop)."""
    if not texts:
        return []
    if len(texts) == 1:
        return [Group([0])]
    matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).fit_transform(
        texts
    )
    sims = (matrix @ matrix.T).toarray()
    order = np.argsort(-(sims >= SIMILAR).sum(axis=1), kind="stable")  # densest first
    groups: list[Group] = []
    taken = np.zeros(len(texts), dtype=bool)
    for seed in order:
        if taken[seed]:
            continue
        members = [int(i) for i in np.flatnonzero((sims[seed] >= SIMILAR) & ~taken)]
        taken[members] = True
        sub = sims[np.ix_(members, members)]
        groups.append(Group(members, members[int(np.argmax(sub.sum(axis=1)))]))
    groups.sort(key=lambda g: -len(g.members))
    return groups


def report(records: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    records = sorted(records, key=lambda r: r["at"])
    out = []
    for g in group([r["text"] for r in records])[:limit]:
        members = [records[i] for i in g.members]
        center = records[g.center]["text"]
        reasons: dict[str, int] = {}
        for r in members:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        seen = {center}
        examples: list[str] = []
        for r in members:
            if r["text"] not in seen and len(examples) < EXAMPLES:
                seen.add(r["text"])
                examples.append(r["text"])
        out.append(
            {
                "id": "gap_" + hashlib.sha256(center.encode()).hexdigest()[:12],
                "question": center,
                "count": len(members),
                "reasons": reasons,
                "examples": examples,
                "firstSeen": iso(min(r["at"] for r in members)),
                "lastSeen": iso(max(r["at"] for r in members)),
            }
        )
    return out
