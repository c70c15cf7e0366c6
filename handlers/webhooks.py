"""The admin webhook API: endpoints (add, list, get, remove) and the delivery log
(read, redeliver). X-API-Key or an admin's bearer token, from the spec."""

from __future__ import annotations

from typing import Any

from handlers import container, ok


def _notify():
    return container().notify


async def list_endpoints():
    return ok({"endpoints": await _notify().list_endpoints()})


async def create_endpoint(body: dict[str, Any]):
    created = await _notify().create_endpoint(
        url=body["url"],
        events=body.get("events"),
        secret=body.get("secret"),
        description=body.get("description", ""),
    )
    secret = created.pop("secret")
    return ok({"endpoint": created, "secret": secret}, 201)


async def get_endpoint(endpointId: str):
    return ok({"endpoint": await _notify().get_endpoint(endpointId)})


async def delete_endpoint(endpointId: str):
    await _notify().delete_endpoint(endpointId)
    return None, 204


async def list_deliveries(
    event: str | None = None, endpoint: str | None = None, status: str | None = None, limit=50
):
    found = await _notify().deliveries.find(
        event=event, endpoint=endpoint, status=status, limit=limit
    )
    return ok({"deliveries": found})


async def get_delivery(deliveryId: str):
    return ok({"delivery": await _notify().deliveries.get(deliveryId)})


async def redeliver(deliveryId: str):
    return ok({"delivery": await _notify().redeliver(deliveryId)}, 202)
