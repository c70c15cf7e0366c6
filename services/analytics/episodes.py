"""One conversation episode's analytics state, and the rules that give it exactly one
outcome. Pure: each step takes the state and the time and returns what to count where;
the store applies it atomically (services/analytics/store.py).

Outcomes (README "Analytics"):
- `bot_resolved_confirmed`: the customer thanked, or rated 4-5, after a bot answer;
- `bot_resolved_assumed`: no customer message within ASSUMED_RESOLUTION_AFTER of the
  bot's last answer (settled when that time has passed, by the next event or the job);
- `agent_resolved`: escalated, then resolved (or handed back) by a person;
- `abandoned`: escalated, and nobody claimed it while the customer stayed silent for
  ANALYTICS_ABANDONED_AFTER (a late claim still turns it into agent_resolved);
- `reopened`: resolved (by the bot or a person), and the customer wrote again within
  ANALYTICS_REOPEN_WINDOW; the return starts a new episode.
Episode facts (start, escalation, outcome) count on the day the episode started, so every
rate over episodes shares one denominator; message facts count when they happen.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from services.analytics.histogram import WAIT_BOUNDS, observe

RESOLVED = ("bot_resolved_confirmed", "bot_resolved_assumed", "agent_resolved")
OUTCOMES = (*RESOLVED, "abandoned", "reopened")


@dataclass(frozen=True, slots=True)
class Windows:
    """Milliseconds."""

    assumed: int
    abandoned: int
    reopen: int


@dataclass
class Effects:
    """Counter increments by the time they belong to (ms)."""

    counts: list[tuple[int, Counter[str]]] = field(default_factory=list)

    def add(self, at: int, fields: dict[str, int]) -> None:
        self.counts.append((at, Counter(fields)))


@dataclass
class Episode:
    n: int = 0  # 0: none yet
    start: int = 0
    state: str = ""  # bot | escalated | assigned | done
    outcome: str = ""
    done_at: int = 0
    last_bot: int = 0
    last_customer: int = 0
    escalated_at: int = 0
    claimed_at: int = 0
    replied_at: int = 0
    version: str = ""

    FIELDS = (
        "n", "start", "state", "outcome", "done_at", "last_bot", "last_customer",
        "escalated_at", "claimed_at", "replied_at",
    )  # fmt: skip

    @classmethod
    def load(cls, raw: dict[bytes, bytes]) -> Episode:
        data = {k.decode(): v.decode() for k, v in raw.items()}
        ep = cls(version=data.get("v", ""))
        for name in cls.FIELDS:
            if name in data:
                value = data[name]
                setattr(ep, name, value if name in ("state", "outcome") else int(value))
        return ep

    def dump(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in self.FIELDS}

    def due(self, w: Windows) -> int | None:
        """When a time-based outcome would settle, if nothing happens first."""
        if self.state == "bot" and self.last_bot and self.last_bot >= self.last_customer:
            return self.last_bot + w.assumed
        if self.state == "escalated":
            return max(self.escalated_at, self.last_customer) + w.abandoned
        return None

    # -- steps -------------------------------------------------------------------------
    def settle(self, now: int, w: Windows, fx: Effects) -> bool:
        """Settle a time-based outcome whose time has come; True when one was."""
        due = self.due(w)
        if due is None or now < due:
            return False
        self._finish("bot_resolved_assumed" if self.state == "bot" else "abandoned", due, fx)
        return True

    def customer_message(
        self, now: int, thanks: bool, w: Windows, fx: Effects, waiting: bool = False
    ) -> None:
        """`waiting`: the conversation is with the team (escalated or assigned), so the
        customer has not left: an abandonment settled meanwhile is taken back."""
        fx.add(now, {"msg:customer": 1})
        if waiting and self.state == "done" and self.outcome == "abandoned":
            self._change("", fx)
            self.state = "escalated"
        if waiting and self.state in ("escalated", "assigned"):
            self.last_customer = now
            return
        self.settle(now, w, fx)
        if self.state == "bot" and thanks and self.last_bot >= self.last_customer > 0:
            self.last_customer = now
            self._finish("bot_resolved_confirmed", now, fx)
            return
        if self.state in ("", "done"):
            if self.outcome in RESOLVED and now - self.done_at <= w.reopen:
                self._change("reopened", fx)
            self._begin(now, fx)
        self.last_customer = now

    def bot_answer(self, now: int, escalated: list[str], fx: Effects) -> None:
        fx.add(now, {"msg:bot": 1})
        if self.state == "":
            self._begin(now, fx)  # an answer without a recorded question: count the episode
        if self.state == "bot":
            self.last_bot = now
            if escalated:
                self.state, self.escalated_at = "escalated", now
                fx.add(self.start, {"escalated": 1, **{f"esc:{r}": 1 for r in escalated}})

    def claimed(self, now: int, fx: Effects) -> None:
        if self.state == "done" and self.outcome == "abandoned":  # a late claim
            self._change("", fx)
            self.state = "escalated"
        if self.state == "escalated":
            self.state, self.claimed_at = "assigned", now
            fx.add(now, observe("claim", (now - self.escalated_at) / 1000, WAIT_BOUNDS))

    def agent_reply(self, now: int, fx: Effects) -> None:
        fx.add(now, {"msg:agent": 1})
        if self.escalated_at and not self.replied_at and self.state in ("escalated", "assigned"):
            self.replied_at = now
            fx.add(now, observe("first", (now - self.escalated_at) / 1000, WAIT_BOUNDS))

    def resolved(self, now: int, fx: Effects) -> None:
        """By a person (resolve or handback)."""
        if self.state == "done" and self.outcome == "abandoned":
            self._change("", fx)
            self.state = "escalated"
        if self.state in ("escalated", "assigned"):
            since = self.claimed_at or self.escalated_at
            fx.add(now, observe("handle", (now - since) / 1000, WAIT_BOUNDS))
            self._finish("agent_resolved", now, fx)

    def rated(self, now: int, rating: int, fx: Effects) -> None:
        fx.add(now, {f"csat:{rating}": 1})
        if rating < 4:
            return
        if self.state == "bot" and self.last_bot:
            self._finish("bot_resolved_confirmed", now, fx)
        elif self.state == "done" and self.outcome == "bot_resolved_assumed":
            self._change("bot_resolved_confirmed", fx)

    # -- helpers -----------------------------------------------------------------------
    def _begin(self, now: int, fx: Effects) -> None:
        self.n += 1
        self.start, self.state, self.outcome, self.done_at = now, "bot", "", 0
        self.last_bot = self.last_customer = self.escalated_at = 0
        self.claimed_at = self.replied_at = 0
        fx.add(now, {"episodes": 1})

    def _finish(self, outcome: str, at: int, fx: Effects) -> None:
        self.state, self.outcome, self.done_at = "done", outcome, at
        fx.add(self.start, {f"out:{outcome}": 1})

    def _change(self, outcome: str, fx: Effects) -> None:
        """Replace a settled outcome (counted where the episode started)."""
        fields = {f"out:{self.outcome}": -1}
        if outcome:
            fields[f"out:{outcome}"] = 1
        fx.add(self.start, fields)
        self.outcome = outcome
