"""A customer's rating of a bot answer, through the public REST API: 4-5 confirms the bot's
resolution, a lower one does not, and both count in CSAT."""

from __future__ import annotations

from typing import Any

from tests.analytics.conftest import Fleet, local


async def _rated_bot_answer(fleet: Fleet, rating: int) -> None:
    api = fleet.pick(0).api
    res = await api.post("/api/v1/chat/session", json={"userId": f"rater-{rating}"})
    assert res.status_code == 200, res.text
    sid = res.json()["sessionId"]
    res = await api.post(
        "/api/v1/chat/message", json={"sessionId": sid, "message": "How do I track my order?"}
    )
    assert res.status_code == 200 and res.json()["status"] == "active", res.text
    fleet.clock.advance(20)
    res = await api.post(f"/api/v1/chat/session/{sid}/rating", json={"rating": rating})
    assert res.status_code == 200, res.text
    fleet.clock.advance(5)


async def test_a_bot_answer_rated_5_is_a_confirmed_bot_resolution_and_counts_in_csat(fleet):
    fleet.clock.at(local(2027, 3, 1, 9))
    await _rated_bot_answer(fleet, 5)
    await _rated_bot_answer(fleet, 2)

    async def summary() -> Any:
        return await fleet.get("summary", **{"from": "2027-03-01", "to": "2027-03-01"})

    got = await fleet.wait_for(summary, lambda s: s["csat"]["count"] == 2)
    assert got["episodes"]["count"] == 2
    outcomes = got["outcomes"]
    assert outcomes["botResolvedConfirmed"] == 1 and outcomes["botResolved"] == 1
    assert outcomes["botResolvedAssumed"] == 0 and outcomes["pending"] == 1  # the one rated 2
    assert got["containment"]["numerator"] == 1 and got["containment"]["denominator"] == 2
    assert got["csat"]["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    assert got["csat"]["average"] == 3.5
    assert got["csat"]["satisfied"]["numerator"] == 1
