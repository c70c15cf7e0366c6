"""Tickets for agents: list, export (JSON or CSV), read, close."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from handlers import container, ok
from services.sessions import iso
from services.store import now_ms


def _tickets() -> Any:
    return container().tickets


async def list_tickets(status: str | None = None):
    return ok({"tickets": [t.summary() for t in await _tickets().list(status)]})


async def export_tickets(format: str = "json", status: str | None = None):
    if format == "csv":
        body = await _tickets().export_csv(status)
        return Response(
            body,
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="tickets.csv"'},
        )
    tickets = [t.full() for t in await _tickets().list(status, limit=100_000)]
    return ok({"exportedAt": iso(now_ms()), "tickets": tickets})


async def get_ticket(ticketId: str):
    return ok({"ticket": (await _tickets().get(ticketId)).full()})


async def close_ticket(ticketId: str):
    return ok({"ticket": (await _tickets().set_status(ticketId, "closed")).full()})
