"""DELETE /chat/session/{sessionId}, GET /chat/session/{sessionId}/export,
DELETE /admin/users/{userId} (X-API-Key or an admin's bearer token)."""

from __future__ import annotations

from starlette.responses import Response

from handlers import JSON, container, ok


async def erase_session(sessionId: str):
    await container().privacy.erase_session(sessionId)
    return None, 204


async def export_session(sessionId: str, format: str = "json"):
    privacy = container().privacy
    export = await privacy.export(sessionId)
    if format == "text":
        return Response(
            privacy.as_text(export),
            media_type="text/plain",
            headers={"Content-Disposition": 'attachment; filename="conversation.txt"'},
        )
    return export, 200, {**JSON, "Content-Disposition": 'attachment; filename="conversation.json"'}


async def erase_user(userId: str):
    return ok({"success": True, "sessions": await container().privacy.erase_user(userId)})
