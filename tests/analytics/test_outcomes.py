"""A scripted day of 50 conversations with known outcomes, driven through the public REST
API (customers) and the agent API, with the analytics' clock moved by the test: the
summary gives exactly the expected figures, when every conversation goes through one
instance, when half go through a second one, and after both restart on the same Redis
(the settling job then finishes what was left)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from tests.analytics.conftest import Fleet, local

FAQ = [
    "How long does shipping take?",
    "How do I track my order?",
    "What is your return policy?",
    "Do you ship internationally?",
    "Can I pay with PayPal?",
]
THANKS = ["thanks a lot", "great, thanks"]
ESCALATING = {
    "requested": "I want to talk to a human",
    "keyword": "This is urgent",
    "frustration": "this is useless, you are a stupid bot",
    "low_confidence": "blorp flanger wibble",
}
REPEATED = "What payment methods do you accept for orders?"
RATINGS = [5, 5, 5, 4, 4, 3, 2, 1]
# (reason, what happens next), 22 escalations
ESCALATIONS = (
    [("requested", "fast")] * 4
    + [("requested", "slow")] * 2
    + [("keyword", "fast")] * 2
    + [("keyword", "abandon")] * 2
    + [("frustration", "fast")] * 2
    + [("frustration", "abandon")] * 2
    + [("low_confidence", "fast"), ("low_confidence", "abandon"), ("low_confidence", "hold")]
    + [("repeated_failure", "fast"), ("repeated_failure", "abandon")]
    + [("repeated_failure", "hold"), ("repeated_failure", "return")]
    + [("low_confidence", "late")]
)
CONFIRMED, ASSUMED, BOT_RETURNS = 12, 12, 4


@dataclass
class Run:
    """One scripted day; `split` sends every other conversation through the second app."""

    fleet: Fleet
    day: date
    split: bool
    customer_messages: int = 0
    agent_messages: int = 0
    n: int = 0
    sessions: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)

    def instance(self, i: int) -> Any:
        return self.fleet.pick(i if self.split else 0)

    async def start(self, kind: str) -> tuple[str, int]:
        i = self.n
        self.n += 1
        res = await self.instance(i).api.post(
            "/api/v1/chat/session", json={"userId": f"{self.day}-customer-{i}", "metadata": {}}
        )
        assert res.status_code == 200, res.text
        sid = res.json()["sessionId"]
        self.sessions.setdefault(kind, []).append((sid, i))
        return sid, i

    async def say(self, sid: str, i: int, text: str) -> dict[str, Any]:
        res = await self.instance(i).api.post(
            "/api/v1/chat/message", json={"sessionId": sid, "message": text}
        )
        assert res.status_code == 200, res.text
        self.customer_messages += 1
        return dict(res.json())

    async def agent(self, sid: str, i: int, step: str, body: Any = None) -> None:
        res = await self.instance(i + 1).api.post(  # the agent sits on the other instance
            f"/api/v1/agents/conversations/{sid}/{step}", json=body, headers=self.fleet.bearer()
        )
        assert res.status_code == 200, res.text
        if step == "messages":
            self.agent_messages += 1

    async def rate(self, sid: str, i: int, rating: int) -> None:
        res = await self.instance(i).api.post(
            f"/api/v1/chat/session/{sid}/rating", json={"rating": rating}
        )
        assert res.status_code == 200, res.text

    def tick(self, seconds: float = 1) -> None:
        self.fleet.clock.advance(seconds)

    async def escalate(self, reason: str) -> tuple[str, int]:
        sid, i = await self.start("escalated")
        if reason == "repeated_failure":
            await self.say(sid, i, REPEATED)
            self.tick()
            reply = await self.say(sid, i, REPEATED)
        else:
            reply = await self.say(sid, i, ESCALATING[reason])
        rules = [r["rule"] for r in reply["escalation"]["reasons"]]
        assert reason in rules, reply
        self.reasons.update(rules)  # a message may meet more than one rule
        return sid, i

    async def handled(self, sid: str, i: int, claim: float, reply: float, rating: int | None):
        """Claimed `claim` s after the escalation, a first reply at `reply` s, resolved 500 s
        after the claim."""
        self.tick(claim)
        await self.agent(sid, i, "claim")
        self.tick(reply - claim)
        await self.agent(sid, i, "messages", {"message": "Happy to help with that."})
        self.tick(500 - (reply - claim))
        await self.agent(sid, i, "resolve")
        if rating is not None:
            await self.rate(sid, i, rating)

    async def play(self) -> None:
        clock = self.fleet.clock
        clock.at(local(self.day.year, self.day.month, self.day.day, 8))
        for k in range(CONFIRMED):
            sid, i = await self.start("confirmed")
            await self.say(sid, i, FAQ[k % len(FAQ)])
            self.tick(30)
            await self.say(sid, i, THANKS[k % 2])
            self.tick()
        for k in range(ASSUMED):
            sid, i = await self.start("assumed")
            await self.say(sid, i, FAQ[k % len(FAQ)])
            self.tick()
        for k in range(BOT_RETURNS):
            sid, i = await self.start("bot_return")
            await self.say(sid, i, FAQ[k])
            self.tick(10)
            await self.say(sid, i, "great, thanks")
            self.tick()
        ratings = iter(RATINGS)
        abandoned = 0
        for reason, fate in ESCALATIONS:
            sid, i = await self.escalate(reason)
            if fate in ("fast", "return"):
                await self.handled(sid, i, 90, 200, next(ratings, None))
                if fate == "return":
                    self.sessions.setdefault("agent_return", []).append((sid, i))
            elif fate == "slow":
                await self.handled(sid, i, 1000, 1100, None)
            elif fate == "hold":
                self.tick(90)
                await self.agent(sid, i, "claim")
                self.tick(110)
                await self.agent(sid, i, "messages", {"message": "Looking into it."})
            elif fate == "abandon":
                abandoned += 1
            elif fate == "late":  # abandoned first (the job settles it), then claimed anyway
                clock.advance(1801)
                gone = abandoned + 1
                await self.fleet.wait_for(
                    self.summary, lambda s, gone=gone: s["outcomes"]["abandoned"] == gone
                )
                await self.handled(sid, i, 3600 - 1801, 3700 - 1801, None)
            self.tick(600)
        # two days later: the bot-resolved and one agent-resolved customer come back
        clock.at(local(self.day.year, self.day.month, self.day.day, 8) + timedelta(days=2))
        for sid, i in self.sessions["bot_return"] + self.sessions["agent_return"]:
            await self.say(sid, i, FAQ[0])
            self.tick()

    async def summary(self, i: int = 0) -> Any:
        last = self.day + timedelta(days=3)
        return await self.fleet.get("summary", i, **{"from": str(self.day), "to": str(last)})


def expected(run: Run, *, settled: bool) -> dict[str, Any]:
    """The figures of the script; `settled`: after the returning customers' new episodes
    were left alone for more than ASSUMED_RESOLUTION_AFTER."""
    returns = BOT_RETURNS + 1
    episodes = CONFIRMED + ASSUMED + BOT_RETURNS + len(ESCALATIONS) + returns
    assumed = ASSUMED + (returns if settled else 0)
    bot_resolved = CONFIRMED + assumed
    return {
        "episodes": {"count": episodes},
        "messages": {
            "customer": run.customer_messages,
            "bot": run.customer_messages,  # every message here reached the bot
            "agent": run.agent_messages,
            "total": 2 * run.customer_messages + run.agent_messages,
        },
        "outcomes": {
            "botResolved": bot_resolved,
            "botResolvedConfirmed": CONFIRMED,
            "botResolvedAssumed": assumed,
            "agentResolved": 13,
            "abandoned": 6,
            "reopened": returns,
            "pending": 2 + (0 if settled else returns),
        },
        "containment": {
            "value": round(bot_resolved / episodes, 4),
            "numerator": bot_resolved,
            "denominator": episodes,
            "denominatorName": "episodes",
        },
        "escalation": {
            "rate": {
                "value": round(22 / episodes, 4),
                "numerator": 22,
                "denominator": episodes,
                "denominatorName": "episodes",
            },
            "byReason": dict(sorted(run.reasons.items())),
        },
        # 13 claims after 90 s, 2 after 1000 s, 1 after 3600 s (bucket bounds 120/1800/3600)
        "timeToClaim": {
            "count": 16,
            "unit": "seconds",
            "mean": round((13 * 90 + 2 * 1000 + 3600) / 16, 3),
            "p50": 120.0,
            "p90": 1800.0,
            "p95": 3600.0,
            "p99": 3600.0,
        },
        "agentFirstResponse": {
            "count": 16,
            "unit": "seconds",
            "mean": round((13 * 200 + 2 * 1100 + 3700) / 16, 3),
            "p50": 300.0,
            "p90": 1800.0,
            "p95": 7200.0,
            "p99": 7200.0,
        },
        "handleTime": {
            "count": 14,
            "unit": "seconds",
            "mean": 500.0,
            "p50": 600.0,
            "p90": 600.0,
            "p95": 600.0,
            "p99": 600.0,
        },
        "csat": {
            "count": 8,
            "average": round(sum(RATINGS) / 8, 3),
            "distribution": {"1": 1, "2": 1, "3": 1, "4": 2, "5": 3},
            "satisfied": {
                "value": 0.625,
                "numerator": 5,
                "denominator": 8,
                "denominatorName": "ratings",
            },
        },
    }


def check(summary: dict[str, Any], want: dict[str, Any]) -> None:
    got = {k: summary[k] for k in want}
    assert got == want
    # a HyperLogLog estimate (standard error 0.81 %): 50 customers within one
    assert abs(summary["distinctCustomers"] - 50) <= 1
    outcomes = summary["outcomes"]
    parts = ("botResolved", "agentResolved", "abandoned", "reopened", "pending")
    assert sum(outcomes[k] for k in parts) == summary["episodes"]["count"]
    (local_provider,) = summary["providers"]
    assert local_provider["provider"] == "local"
    assert local_provider["replies"] == want["messages"]["bot"]
    assert local_provider["failures"] == 0
    assert local_provider["latency"]["count"] == want["messages"]["bot"]


async def settle_returns(fleet: Fleet, run: Run) -> None:
    fleet.clock.at(local(run.day.year, run.day.month, run.day.day, 12) + timedelta(days=3))
    want = expected(run, settled=True)
    summary = await fleet.wait_for(
        run.summary, lambda s: s["outcomes"]["pending"] == want["outcomes"]["pending"]
    )
    check(summary, want)


async def test_one_instance_then_two_then_a_restart(fleet: Fleet) -> None:
    one = Run(fleet, date(2027, 1, 11), split=False)
    await one.play()
    assert one.n == 50
    want = expected(one, settled=False)
    # the assumed resolutions of the first day settle once a day has passed (job or event)
    check(await fleet.wait_for(one.summary, lambda s: s == s and _settled(s, want)), want)
    await settle_returns(fleet, one)

    two = Run(fleet, date(2027, 1, 21), split=True)
    await two.play()
    want = expected(two, settled=False)
    check(await fleet.wait_for(two.summary, lambda s: _settled(s, want)), want)
    # both instances answer the same figures
    assert await two.summary(1) == {**await two.summary(0), "generatedAt": ANY}

    await fleet.stop_all()  # a restart: new apps on the same Redis
    await fleet.add()
    res = await fleet.instances[0].api.post(
        "/api/v1/agents/login", json={"email": "lead@example.com", "password": "lead-pass-123"}
    )
    fleet.admin = res.json()["token"]
    check(await one.summary(), expected(one, settled=True))
    check(await two.summary(), want)
    await settle_returns(fleet, two)  # the new app's job settles what the old ones left


def _settled(summary: dict[str, Any], want: dict[str, Any]) -> bool:
    return bool(summary["outcomes"] == want["outcomes"])


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY = _Any()


GAPS_DAY = date(2027, 2, 3)
ZORBLAX = [
    "is the zorblax flux capacitor waterproof",
    "my email is jane.doe@example.com, is the zorblax flux capacitor waterproof",
    "can the zorblax flux capacitor get wet",
]
GLIMMERWICK = [
    "does the glimmerwick lantern need batteries",
    "call me on +49 30 12345678, does the glimmerwick lantern take batteries",
    "which batteries for a glimmerwick lantern",
]


async def test_gaps_group_paraphrases_and_keep_no_personal_data(fleet: Fleet) -> None:
    fleet.clock.at(local(GAPS_DAY.year, GAPS_DAY.month, GAPS_DAY.day, 10))
    api = fleet.instances[0].api
    for n, text in enumerate(ZORBLAX + GLIMMERWICK):
        res = await api.post("/api/v1/chat/session", json={"userId": f"gap-{n}", "metadata": {}})
        sid = res.json()["sessionId"]
        res = await api.post("/api/v1/chat/message", json={"sessionId": sid, "message": text})
        assert res.status_code == 200, res.text
        fleet.clock.advance(5)
    body = await fleet.get("gaps", **{"from": str(GAPS_DAY), "to": str(GAPS_DAY)})
    assert body["storing"] is True
    assert body["total"] == 6
    groups = [sorted([g["question"], *g["examples"]]) for g in body["groups"]]
    assert [g["count"] for g in body["groups"]] == [3, 3]
    texts = " ".join(t for g in groups for t in g)
    assert "jane.doe@example.com" not in texts and "12345678" not in texts
    for word in ("zorblax", "glimmerwick"):  # each group holds all paraphrases of one question
        assert sum(all(word in t for t in g) for g in groups) == 1

    res = await api.get(
        "/api/v1/analytics/gaps",
        params={"from": str(GAPS_DAY), "to": str(GAPS_DAY)},
        headers={**fleet.bearer(), "Accept": "text/csv"},
    )
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    lines = res.text.strip().splitlines()
    assert lines[0] == "question,count,reasons,firstSeen,lastSeen,examples" and len(lines) == 3


async def test_timeseries_csv_and_who_may_read(fleet: Fleet) -> None:
    day = date(2027, 1, 11)  # the first scripted day
    by_day = await fleet.get("timeseries", metric="episodes", bucket="day", **{"from": str(day)})
    assert by_day["points"][0]["start"] == "2027-01-11T00:00:00+01:00"
    counts = [p["value"] for p in by_day["points"]]
    assert counts[:3] == [CONFIRMED + ASSUMED + BOT_RETURNS + len(ESCALATIONS), 0, 5]
    hours = await fleet.get(
        "timeseries", metric="containment", bucket="hour", **{"from": str(day), "to": str(day)}
    )
    assert len(hours["points"]) == 24 and hours["denominatorName"] == "episodes"
    points = hours["points"]
    assert sum(p.get("denominator", 0) for p in points) == 50
    assert sum(p.get("numerator", 0) for p in points) == CONFIRMED + ASSUMED  # 4 reopened
    assert points[7] == {
        "start": "2027-01-11T07:00:00+01:00",
        "value": None,
        "numerator": 0,
        "denominator": 0,
    }
    reasons = await fleet.get(
        "timeseries", metric="escalations", **{"from": str(day), "to": str(day)}
    )
    assert reasons["points"][0]["value"] == len(ESCALATIONS)

    api = fleet.instances[0].api
    res = await api.get(
        "/api/v1/analytics/summary",
        params={"from": str(day), "to": str(day), "format": "csv"},
        headers=fleet.bearer(),
    )
    rows = {line.split(",")[0]: line.split(",")[1:] for line in res.text.splitlines()[1:]}
    assert rows["containment"][1:] == [str(CONFIRMED + ASSUMED), "50"]
    # any agent may read; nobody else
    res = await api.post(
        "/api/v1/agents",
        json={"email": "reader@example.com", "name": "Reader", "password": "reader-pass-1"},
        headers=fleet.bearer(),
    )
    assert res.status_code == 201, res.text
    res = await api.post(
        "/api/v1/agents/login", json={"email": "reader@example.com", "password": "reader-pass-1"}
    )
    reader = res.json()["token"]
    res = await api.get("/api/v1/analytics/summary", headers=fleet.bearer(reader))
    assert res.status_code == 200
    res = await api.get("/api/v1/analytics/summary", headers={"X-API-Key": "test-admin-key"})
    assert res.status_code == 200
    res = await api.get("/api/v1/analytics/summary")
    assert res.status_code == 401
    res = await api.get(
        "/api/v1/analytics/summary",
        params={"from": "2027-02-01", "to": "2027-01-01"},
        headers=fleet.bearer(),
    )
    assert res.status_code == 400 and res.json()["code"] == "INVALID_RANGE"
