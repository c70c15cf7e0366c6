"""The Socket.IO contract: the AsyncAPI document the server serves is valid for the official
parser (from npm, pinned in package-lock.json), documents every event the sockets accept,
says the configured limits, and what the server really emits matches it."""

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import socketio

from services.asyncapi import CHANNELS, asyncapi_spec
from services.contract import api_spec, bundled_spec, resolved_schema
from sockets.validation import EVENT_SCHEMAS
from tests.conftest import here

ROOT = here().parent
VALIDATOR = here() / "validate_asyncapi.mjs"


def parse_with_asyncapi_parser(document: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail("node and `npm ci` are needed (make test runs npm ci)")
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document))
    done = subprocess.run(
        [node, str(VALIDATOR), str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


async def test_the_served_document_is_valid_asyncapi_3(api, tmp_path):
    res = await api.get("/api/v1/asyncapi.json")
    assert res.status_code == 200 and res.headers["content-type"] == "application/json"
    document = res.json()
    assert document["asyncapi"] == "3.0.0"
    report = await asyncio.to_thread(parse_with_asyncapi_parser, document, tmp_path)
    assert report["errors"] == [] and report["warnings"] == []
    assert report["channels"] == ["/", "/agents"]
    assert report["operations"] == sum(len(events) for _, _, events in CHANNELS.values())


def test_it_says_the_configured_message_limit():
    document = asyncapi_spec(123)
    assert document["components"]["schemas"]["MessageText"]["maxLength"] == 123
    assert document["info"]["version"] == bundled_spec()["info"]["version"]


def test_every_event_the_sockets_accept_is_documented_with_its_schema():
    documented = {
        (channel, event.name): event.schema
        for channel, (_, _, events) in CHANNELS.items()
        for event in events
        if event.direction == "client"
    }
    accepted = {
        ("agents", key.removeprefix("agent:")) if key.startswith("agent:") else ("customers", key)
        for key in EVENT_SCHEMAS
    }
    assert accepted == set(documented)
    for key, schema in EVENT_SCHEMAS.items():
        channel = "agents" if key.startswith("agent:") else "customers"
        assert documented[(channel, key.removeprefix("agent:"))] == schema


def test_socket_payload_schemas_resolve_outside_the_openapi_components():
    spec = api_spec(77)
    assert not set(EVENT_SCHEMAS.values()) & set(spec["components"]["schemas"])
    for name in set(EVENT_SCHEMAS.values()):
        schema = resolved_schema(name, spec)
        assert "$ref" not in json.dumps(schema)
    message = resolved_schema("SendMessageEvent", spec)["properties"]["message"]
    assert message["maxLength"] == 77


def inline(node: Any, schemas: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return inline(schemas[node["$ref"].rsplit("/", 1)[1]], schemas)
        return {key: inline(value, schemas) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(item, schemas) for item in node]
    return node


async def test_what_the_server_emits_to_customers_matches_the_document(server):
    document = asyncapi_spec(4000)
    schemas = document["components"]["schemas"]
    server_events = {e.name: e.schema for e in CHANNELS["customers"][2] if e.direction == "server"}
    received: list[tuple[str, Any]] = []
    client = socketio.AsyncClient(reconnection=False)

    @client.on("*")
    async def record(event: str, data: Any = None) -> None:
        received.append((event, data))

    await client.connect(server.url, transports=["websocket"], wait_timeout=10)
    try:
        await client.emit("join-chat", {"userId": "contract-user"})
        for _ in range(200):
            if any(event == "chat-joined" for event, _ in received):
                break
            await asyncio.sleep(0.05)
        session_id = next(data for event, data in received if event == "chat-joined")["sessionId"]
        await client.emit("send-message", {"sessionId": session_id, "message": "emergency!"})
        await client.emit("send-message", {"sessionId": "x"})  # refused: an `error` event
        for _ in range(200):
            names = {event for event, _ in received}
            if {"message-received", "escalation-needed", "error"} <= names:
                break
            await asyncio.sleep(0.05)
        await client.emit("join-chat", {"sessionId": session_id})  # a rejoin
        await asyncio.sleep(0.3)
    finally:
        await client.disconnect()
    names = {event for event, _ in received}
    assert {"chat-joined", "typing", "message-received", "escalation-needed", "error"} <= names
    for event, data in received:
        assert event in server_events, f"{event} is not documented"
        schema = inline(schemas[server_events[event]], schemas)
        jsonschema.Draft7Validator(schema).validate(data)
