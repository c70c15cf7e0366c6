"""POST /chat/session, POST /chat/message, GET /chat/history/{sessionId}."""

from __future__ import annotations

from typing import Any

from connexion import request

from handlers import container, ok
from handlers.limits import hit_with_request, request_address
from services.chat import source_dict
from services.i18n import negotiate
from services.sessions import iso


async def create_session(body: dict[str, Any]):
    await hit_with_request("sessions", request_address())
    chat = container().chat
    session = await chat.start_session(
        user_id=body["userId"],
        metadata=body.get("metadata"),
        language=negotiate(
            chat.catalogues.languages, accept_language=request.headers.get("accept-language")
        ),
    )
    return ok(
        {
            "success": True,
            "sessionId": session.id,
            "userId": session.user_id,
            "createdAt": iso(session.created_at),
            "expiresAt": iso(session.expires_at),
            "status": session.status,
        }
    )


async def send_message(body: dict[str, Any]):
    await hit_with_request("messages", body["sessionId"])
    chat = container().chat
    result = await chat.send(
        session_id=body["sessionId"], user_id=body.get("userId"), message=body["message"]
    )
    reply: dict[str, Any] = {
        "success": True,
        "response": result.text,
        "needsEscalation": result.needs_escalation,
        "timestamp": result.timestamp,
        "confidence": result.confidence,
        "messageId": result.message_id,
        "provider": result.provider,
        "sources": [source_dict(s) for s in result.sources],
    }
    if result.reasons:
        reply["escalation"] = {"reasons": [r.as_dict() for r in result.reasons]}
    if result.usage:
        reply["usage"] = result.usage
    reply["status"] = result.status
    reply["handledBy"] = result.handled_by
    if result.queue_position is not None:
        reply["queuePosition"] = result.queue_position
    if result.contact_requested:
        reply["contactRequested"] = True
        reply["nextOpening"] = result.next_opening
    return ok(reply)


async def get_history(sessionId: str):
    session, transcript = await container().chat.history(sessionId)
    return ok(
        {
            "success": True,
            "history": transcript,
            "sessionData": {
                "sessionId": session.id,
                "userId": session.user_id,
                "createdAt": iso(session.created_at),
                "lastActivity": iso(session.last_activity),
                "expiresAt": iso(session.expires_at),
                "status": session.status,
                "metadata": session.metadata,
            },
        }
    )


async def rate(sessionId: str, body: dict[str, Any]):
    rating = await container().conversations.rate(sessionId, body["rating"], body.get("comment"))
    return ok({"success": True, **rating})


async def leave_contact(sessionId: str, body: dict[str, Any]):
    ticket, created = await container().tickets.create(sessionId, body["email"])
    return ok({"success": True, "ticketId": ticket.id, "created": created})
