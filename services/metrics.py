"""This instance's counters, shown by /health (analytics-ready: one place to export from)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Metrics:
    started_at: float = field(default_factory=time.time)
    messages: int = 0
    sessions_created: int = 0
    escalations: Counter[str] = field(default_factory=Counter)
    replies: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)
    csat: Counter[str] = field(default_factory=Counter)
    resolved: int = 0
    agent_messages: int = 0
    held_messages: int = 0
    budget_skips: Counter[str] = field(default_factory=Counter)  # remote providers skipped
    safety_flags: Counter[str] = field(default_factory=Counter)  # replies withheld, by leak

    @property
    def uptime_seconds(self) -> float:
        return round(time.time() - self.started_at, 3)

    def snapshot(self) -> dict[str, object]:
        return {
            "messages": self.messages,
            "sessionsCreated": self.sessions_created,
            "escalations": dict(self.escalations),
            "escalationsTotal": sum(self.escalations.values()),
            "repliesByResponder": dict(self.replies),
            "transitions": dict(self.transitions),
            "agentMessages": self.agent_messages,
            "heldMessages": self.held_messages,
            "budgetSkips": dict(self.budget_skips),
            "safetyFlags": dict(self.safety_flags),
            "csat": {
                "ratings": sum(self.csat.values()),
                "byRating": dict(self.csat),
                "average": (
                    round(
                        sum(int(k) * v for k, v in self.csat.items()) / sum(self.csat.values()), 3
                    )
                    if self.csat
                    else None
                ),
            },
        }
