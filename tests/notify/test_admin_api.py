"""The admin webhook API on a real server: auth, endpoints with their own secrets and event
filters, the delivery log and redelivery."""

from __future__ import annotations

from typing import Any

from tests.agents.conftest import ADMIN, bearer, login
from tests.notify.conftest import SECRET, Receiver, verify
from tests.notify.test_webhooks import ADMIN_KEY, escalate, hooked

KEY = {"X-API-Key": ADMIN_KEY}
OTHER_SECRET = "whsec_" + "c2VjcmV0LWZvci10aGUtc2Vjb25kLWVuZHBvaW50IQ=="


async def test_auth(server_factory: Any, receiver: Receiver):
    srv = await server_factory(**hooked(receiver))
    async with srv.client() as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        res = await api.post(
            "/api/v1/agents",
            json={"email": "ann@example.com", "name": "Ann", "password": "agent-pass-1"},
            headers=bearer(admin),
        )
        assert res.status_code == 201, res.text
        agent = await login(api, "ann@example.com", "agent-pass-1")
        for method, path in [
            ("GET", "/api/v1/webhooks/endpoints"),
            ("POST", "/api/v1/webhooks/endpoints"),
            ("GET", "/api/v1/webhooks/endpoints/ep_x"),
            ("DELETE", "/api/v1/webhooks/endpoints/ep_x"),
            ("GET", "/api/v1/webhooks/deliveries"),
            ("GET", "/api/v1/webhooks/deliveries/dlv_x"),
            ("POST", "/api/v1/webhooks/deliveries/dlv_x/redeliver"),
        ]:
            body = {"url": "https://example.com/hook"} if method == "POST" else None
            nobody = await api.request(method, path, json=body)
            assert nobody.status_code == 401, (path, nobody.text)
            assert nobody.headers["content-type"] == "application/problem+json"
            wrong = await api.request(method, path, json=body, headers={"X-API-Key": "nope"})
            assert wrong.status_code == 401, (path, wrong.text)
            assert (
                await api.request(method, path, json=body, headers=bearer(agent))
            ).status_code == 403
        # an admin's token opens it as the key does
        res = await api.get("/api/v1/webhooks/endpoints", headers=bearer(admin))
        assert res.status_code == 200, res.text


async def test_endpoints_filters_log_and_redelivery(server_factory: Any, receiver: Receiver):
    srv = await server_factory(**hooked(receiver))
    async with srv.client(headers=KEY) as api:
        admin = await login(api, ADMIN["email"], ADMIN["password"])
        # one configured endpoint (WEBHOOK_URLS), read-only here
        [configured] = (await api.get("/api/v1/webhooks/endpoints")).json()["endpoints"]
        assert configured["source"] == "settings" and configured["url"] == receiver.url
        res = await api.delete(f"/api/v1/webhooks/endpoints/{configured['id']}")
        assert res.status_code == 409 and res.json()["code"] == "WEBHOOK_ENDPOINT_READ_ONLY"

        res = await api.post(
            "/api/v1/webhooks/endpoints",
            json={"url": receiver.at("/resolved-only"), "events": ["conversation.resolved"]},
        )
        assert res.status_code == 201, res.text
        only_resolved, generated = res.json()["endpoint"], res.json()["secret"]
        assert generated.startswith("whsec_") and generated != SECRET
        res = await api.post(
            "/api/v1/webhooks/endpoints",
            json={"url": receiver.at("/all"), "secret": OTHER_SECRET, "description": "CRM"},
        )
        assert res.status_code == 201, res.text
        everything = res.json()["endpoint"]
        assert res.json()["secret"] == OTHER_SECRET and everything["events"] == []

        listed = (await api.get("/api/v1/webhooks/endpoints")).json()["endpoints"]
        assert [e["id"] for e in listed] == [
            configured["id"],
            only_resolved["id"],
            everything["id"],
        ]
        assert all("secret" not in e for e in listed)
        res = await api.get(f"/api/v1/webhooks/endpoints/{only_resolved['id']}")
        assert res.json()["endpoint"] == only_resolved

        # refused input
        for bad in (
            {"url": "ftp://example.com/x"},
            {"url": "https://example.com/x", "secret": "not-a-secret"},
            {"url": "https://example.com/x", "events": ["conversation.deleted"]},
            {"url": "https://example.com/x", "extra": 1},
        ):
            res = await api.post("/api/v1/webhooks/endpoints", json=bad)
            assert res.status_code == 400, (bad, res.text)

        sid, _ = await escalate(api)
        await receiver.wait_until(
            lambda: len(receiver.accepted("/all")) == 1 and len(receiver.accepted("/hook")) == 1
        )
        [escalated] = receiver.accepted("/all")
        assert verify(escalated, OTHER_SECRET)["type"] == "conversation.escalated"
        assert receiver.accepted("/resolved-only") == []

        base = f"/api/v1/agents/conversations/{sid}"
        await api.post(f"{base}/claim", headers=bearer(admin))
        await api.post(f"{base}/resolve", headers=bearer(admin))
        await receiver.wait_until(lambda: len(receiver.accepted("/resolved-only")) == 1)
        [resolved] = receiver.accepted("/resolved-only")
        assert verify(resolved, generated)["type"] == "conversation.resolved"
        await receiver.wait_until(lambda: len(receiver.accepted("/all")) == 3)

        # the delivery log of one event: one delivery per endpoint that wanted it
        res = await api.get("/api/v1/webhooks/deliveries", params={"event": escalated.id})
        deliveries = res.json()["deliveries"]
        assert sorted(d["endpointId"] for d in deliveries) == sorted(
            [configured["id"], everything["id"]]
        )
        mine = next(d for d in deliveries if d["endpointId"] == everything["id"])
        assert mine["status"] == "succeeded" and mine["eventType"] == "conversation.escalated"
        assert [a["status"] for a in mine["attempts"]] == [204]
        res = await api.get(f"/api/v1/webhooks/deliveries/{mine['id']}")
        assert res.json()["delivery"] == mine
        res = await api.get("/api/v1/webhooks/deliveries", params={"endpoint": only_resolved["id"]})
        assert [d["eventType"] for d in res.json()["deliveries"]] == ["conversation.resolved"]
        newest = (await api.get("/api/v1/webhooks/deliveries", params={"limit": 2})).json()
        assert len(newest["deliveries"]) == 2

        # redelivery: the same event id and body, signed anew
        res = await api.post(f"/api/v1/webhooks/deliveries/{mine['id']}/redeliver")
        assert res.status_code == 202 and res.json()["delivery"]["status"] == "pending"
        await receiver.wait_until(
            lambda: sum(h.id == escalated.id for h in receiver.accepted("/all")) == 2
        )
        again = [h for h in receiver.accepted("/all") if h.id == escalated.id][-1]
        assert again.body == escalated.body
        verify(again, OTHER_SECRET)
        res = await api.get(f"/api/v1/webhooks/deliveries/{mine['id']}")
        assert [a["status"] for a in res.json()["delivery"]["attempts"]] == [204, 204]

        # unknown ids, deletion
        for path in ("/api/v1/webhooks/deliveries/dlv_nope", "/api/v1/webhooks/endpoints/ep_no"):
            res = await api.get(path)
            assert res.status_code == 404 and res.headers["content-type"].startswith(
                "application/problem+json"
            )
        assert (await api.post("/api/v1/webhooks/deliveries/dlv_no/redeliver")).status_code == 404
        res = await api.delete(f"/api/v1/webhooks/endpoints/{only_resolved['id']}")
        assert res.status_code == 204 and res.content == b""
        assert (
            await api.get(f"/api/v1/webhooks/endpoints/{only_resolved['id']}")
        ).status_code == 404
        assert (
            await api.delete(f"/api/v1/webhooks/endpoints/{only_resolved['id']}")
        ).status_code == 404
        listed = (await api.get("/api/v1/webhooks/endpoints")).json()["endpoints"]
        assert [e["id"] for e in listed] == [configured["id"], everything["id"]]
        assert (
            await api.get("/api/v1/webhooks/deliveries", params={"event": "evt_no"})
        ).json() == {"deliveries": []}
