"""The Socket.IO events' contract: an AsyncAPI 3.0 document built from the same YAML schemas
as the REST API (`openapi/schemas/events.yaml` for what clients send, `server-events.yaml`
for what the server sends), served at `/api/v1/asyncapi.json`.

Two channels, one per Socket.IO namespace: `/` for customers and `/agents` for signed-in
agents (an agent token in the handshake's `auth`). Operations are the server's: `receive`
for an event a client emits, `send` for one the server emits. Schemas are converted from
OpenAPI 3.0's dialect to AsyncAPI's (JSON Schema draft 7): `nullable` becomes a `null` type,
`example` becomes `examples`.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any, Literal

from services.contract import (
    SPEC_DIR,
    Location,
    _Bundler,
    _load,
    _pointer,
    bundled_spec,
)

Direction = Literal["client", "server"]  # who emits the event


@dataclass(frozen=True)
class Event:
    name: str  # the Socket.IO event name
    direction: Direction
    schema: str  # a schema in events.yaml (client) or server-events.yaml (server)
    summary: str


CUSTOMER_EVENTS = (
    Event("join-chat", "client", "JoinChatEvent", "Start a session, or rejoin one by its id."),
    Event("send-message", "client", "SendMessageEvent", "The customer's message."),
    Event("typing", "client", "TypingEvent", "The customer is (or stopped) typing."),
    Event("rate", "client", "RateEvent", "Rate a bot answer or a resolved conversation (1-5)."),
    Event("leave-contact", "client", "LeaveContactEvent", "Leave an e-mail address (a ticket)."),
    Event("identify", "client", "IdentifyEvent", "Who the customer is (the widget's identify)."),
    Event("join-agents", "client", "JoinAgentsEvent", "Join the agents room with the API key."),
    Event("chat-joined", "server", "ChatJoinedEvent", "The session and its transcript."),
    Event("typing", "server", "TypingNotice", "The bot or the agent is typing."),
    Event("message-chunk", "server", "MessageChunkEvent", "A piece of a streaming reply."),
    Event("message-reset", "server", "MessageResetEvent", "Discard the streamed text."),
    Event("message-received", "server", "MessageReceivedEvent", "A whole message."),
    Event("escalation-needed", "server", "EscalationNeededEvent", "A person will take over."),
    Event("agent-joined", "server", "AgentJoinedEvent", "An agent took the conversation."),
    Event(
        "conversation-updated",
        "server",
        "CustomerConversationUpdate",
        "The conversation's status changed.",
    ),
    Event("csat-request", "server", "CsatRequestEvent", "Ask the customer for a rating."),
    Event("rated", "server", "RatedEvent", "The rating was recorded."),
    Event("contact-requested", "server", "ContactRequestedEvent", "Show the e-mail form."),
    Event("contact-saved", "server", "ContactSavedEvent", "The e-mail address was kept."),
    Event("identified", "server", "IdentifiedEvent", "The identity was attached."),
    Event("agents-joined", "server", "AgentsJoinedEvent", "The socket joined the agents room."),
    Event("error", "server", "ErrorEvent", "An event was refused or failed."),
)

AGENT_EVENTS = (
    Event("typing", "client", "AgentTypingEvent", "The agent is (or stopped) typing."),
    Event("set-presence", "client", "SetPresenceEvent", "Online or away."),
    Event("watch", "client", "WatchEvent", "Follow a conversation you do not hold."),
    Event("unwatch", "client", "WatchEvent", "Stop following it."),
    Event("suggest", "client", "SuggestEvent", "Ask for reply suggestions (answer: suggestions)."),
    Event("hello", "server", "HelloEvent", "Right after connecting: who you are, who is online."),
    Event("escalation-needed", "server", "EscalationNeededEvent", "A conversation needs a person."),
    Event("queue-updated", "server", "QueueUpdatedEvent", "The queue changed."),
    Event(
        "conversation-updated",
        "server",
        "AgentConversationUpdate",
        "A conversation changed status, was rated, or its summary arrived.",
    ),
    Event(
        "message-received",
        "server",
        "MessageReceivedEvent",
        "A message in a conversation you hold or watch (admins: all).",
    ),
    Event("typing", "server", "TypingNotice", "The customer is typing."),
    Event("note-added", "server", "NoteAddedEvent", "An internal note was added."),
    Event("suggestions", "server", "SuggestionsEvent", "Reply suggestions you asked for."),
    Event("offer", "server", "OfferEvent", "A waiting conversation is offered to you."),
    Event("offer-withdrawn", "server", "OfferWithdrawnEvent", "The offer ended."),
    Event("ticket-created", "server", "TicketCreatedEvent", "A customer left an e-mail address."),
    Event("queue-reminder", "server", "QueueReminderEvent", "A customer waits unclaimed."),
    Event("presence-updated", "server", "PresenceUpdatedEvent", "Who is online, and how."),
    Event("signed-out", "server", "SignedOutEvent", "Your sign-in ended; disconnecting."),
    Event("error", "server", "ErrorEvent", "An event was refused or failed."),
)

CHANNELS: dict[str, tuple[str, str, tuple[Event, ...]]] = {
    "customers": (
        "/",
        "The chat page's namespace. Joining a session (join-chat) or sending to it puts the "
        "socket in that session's room; the session id is the credential.",
        CUSTOMER_EVENTS,
    ),
    "agents": (
        "/agents",
        "Signed-in agents' consoles. Connect with `auth: {token}` (a token from "
        "POST /api/v1/agents/login); without a valid one the connection is refused.",
        AGENT_EVENTS,
    ),
}


def _schema_locations() -> dict[Location, str]:
    """Every top-level schema of every file under openapi/schemas/, named by its key."""
    named: dict[Location, str] = {}
    seen: dict[str, str] = {}
    for path in sorted((SPEC_DIR / "schemas").glob("*.yaml")):
        for key in _load(path.resolve()) or {}:
            if key in seen:
                raise ValueError(f"schema {key} is defined in both {seen[key]} and {path.name}")
            seen[key] = path.name
            named[(path.resolve(), f"/{key}")] = f"#/components/schemas/{key}"
    return named


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's schema dialect to JSON Schema draft 7 (AsyncAPI's default)."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_json_schema(value) for key, value in node.items()}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if "example" in out:
        out["examples"] = [out.pop("example")]
    return out


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            return {node["$ref"].rsplit("/", 1)[1]}
        return set().union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node))
    return set()


@functools.cache
def _schemas() -> dict[str, Any]:
    """The schemas the events use, named, each reference kept as a local one."""
    bundler = _Bundler(SPEC_DIR / "openapi.yaml", extra=_schema_locations())
    where: dict[str, Location] = {}
    for location, local in bundler.named.items():
        node = _pointer(_load(location[0]), location[1])
        if not (isinstance(node, dict) and set(node) == {"$ref"}):  # the root's alias of a file
            where[local.rsplit("/", 1)[1]] = location
    todo = {event.schema for _, _, events in CHANNELS.values() for event in events}
    schemas: dict[str, Any] = {}
    while todo:
        name = todo.pop()
        path, pointer = where[name]
        schemas[name] = bundler._walk(copy.deepcopy(_pointer(_load(path), pointer)), path)
        todo |= _refs(schemas[name]) - set(schemas)
    return {name: _to_json_schema(schemas[name]) for name in sorted(schemas)}


def _message_id(channel: str, event: Event) -> str:
    return f"{channel}.{event.direction}.{event.name}"


def asyncapi_for(api_document: dict[str, Any]) -> dict[str, Any]:
    """The AsyncAPI document saying the same limits as the served OpenAPI document."""
    return asyncapi_spec(api_document["components"]["schemas"]["MessageText"]["maxLength"])


def asyncapi_spec(max_message_length: int) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the Socket.IO events, saying the configured limits."""
    info = bundled_spec("openapi.yaml")["info"]
    schemas = copy.deepcopy(_schemas())
    if "MessageText" in schemas:
        schemas["MessageText"]["maxLength"] = max_message_length
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for channel, (address, description, events) in CHANNELS.items():
        channel_messages: dict[str, Any] = {}
        for event in events:
            message_id = _message_id(channel, event)
            messages[message_id] = {
                "name": event.name,
                "title": event.name,
                "summary": event.summary,
                "contentType": "application/json",
                "payload": {"$ref": f"#/components/schemas/{event.schema}"},
            }
            channel_messages[message_id] = {"$ref": f"#/components/messages/{message_id}"}
            operation: dict[str, Any] = {
                "action": "receive" if event.direction == "client" else "send",
                "summary": event.summary,
                "channel": {"$ref": f"#/channels/{channel}"},
                "messages": [{"$ref": f"#/channels/{channel}/messages/{message_id}"}],
            }
            if channel == "agents":
                operation["security"] = [{"$ref": "#/components/securitySchemes/agentToken"}]
            operations[message_id] = operation
        channels[channel] = {
            "address": address,
            "title": f"Socket.IO namespace {address}",
            "description": description,
            "messages": channel_messages,
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Support Bot live events",
            "version": info["version"],
            "description": (
                "The Socket.IO (v4) events of the Support Bot, on the same origin and port as "
                "the REST API (path `/socket.io/`). The REST API is described by "
                "`/api/v1/openapi.json`; both are built from the same schemas. A client "
                "event that does not match its schema gets an `error` event "
                "(`INVALID_PAYLOAD`) and the connection stays up."
            ),
            "contact": info.get("contact", {}),
            "license": info.get("license", {}),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "agentToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "A token from POST /api/v1/agents/login, sent in the Socket.IO "
                        "handshake as `auth: {token}`."
                    ),
                }
            },
        },
    }
