"""The admin knowledge API: replace, add, delete, search, status (X-API-Key)."""

from __future__ import annotations

from typing import Any

from connexion import request

from handlers import container, ok


def _knowledge():
    return container().knowledge


async def get_knowledge():
    return ok(_knowledge().status())


async def replace_knowledge(body: Any, format: str | None = None):
    status = await _knowledge().replace_upload(
        body, content_type=request.headers.get("content-type", ""), fmt=format
    )
    return ok(status, 202)


async def add_entry(body: dict[str, Any]):
    return ok(await _knowledge().add_entry(body), 202)


async def delete_entry(entryId: str):
    return ok(await _knowledge().delete_entry(entryId), 202)


async def search_knowledge(q: str, k: int = 5):
    return ok(await _knowledge().search(q, k))
