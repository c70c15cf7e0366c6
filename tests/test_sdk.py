"""The browser client SDK (public/sdk/) speaks the spec's events: the same names as the
customers' namespace in services/asyncapi.py (from openapi/schemas/events.yaml and
server-events.yaml), client payload types with the schemas' properties, and the page and
the widget use no event the SDK does not know. `make lint` type-checks it with tsc."""

import re
from pathlib import Path

import yaml

from services.asyncapi import CUSTOMER_EVENTS

ROOT = Path(__file__).resolve().parent.parent
SDK = ROOT / "public" / "sdk"
SPEC = ROOT / "openapi" / "schemas"


def js_list(source: str, name: str) -> list[str]:
    body = re.search(rf"const {name} = Object\.freeze\(\[(.*?)\]\)", source, re.S)
    assert body, name
    return re.findall(r'"([a-z:-]+)"', body.group(1))


def interface(source: str, name: str) -> dict[str, bool]:
    """A .d.ts interface's properties: name -> required."""
    body = re.search(rf"export interface {name} \{{(.*?)\n\}}", source, re.S)
    assert body, name
    props = re.findall(r"^\s+\"?([\w-]+)\"?(\??):", body.group(1), re.M)
    return {prop: not optional for prop, optional in props if prop != "extra"}


def test_event_names_match_the_spec():
    source = (SDK / "supportbot-client.js").read_text()
    client = {e.name for e in CUSTOMER_EVENTS if e.direction == "client"}
    server = {e.name for e in CUSTOMER_EVENTS if e.direction == "server"}
    assert set(js_list(source, "CLIENT_EVENTS")) == client
    assert set(js_list(source, "SERVER_EVENTS")) == server
    types = (SDK / "supportbot-client.d.ts").read_text()
    assert set(interface(types, "ClientEvents")) == client
    assert set(interface(types, "ServerEvents")) == server


def test_client_payload_types_have_the_schema_properties():
    schemas = yaml.safe_load((SPEC / "events.yaml").read_text())
    types = (SDK / "supportbot-client.d.ts").read_text()
    for event in CUSTOMER_EVENTS:
        if event.direction != "client":
            continue
        schema = schemas[event.schema]
        declared = interface(types, event.schema)
        assert set(declared) == set(schema["properties"]), event.name
        required = {p for p, needed in declared.items() if needed}
        assert required == set(schema.get("required", [])), event.name


def test_page_and_widget_use_only_events_the_sdk_knows():
    sdk = (SDK / "supportbot-client.js").read_text()
    known = set(js_list(sdk, "CLIENT_EVENTS")) | set(js_list(sdk, "SERVER_EVENTS"))
    builtin = {"connect", "disconnect", "connect_error", "reconnect_failed"}
    for page in ("chat.js", "embed.js"):
        source = (ROOT / "public" / "js" / page).read_text()
        used = set(re.findall(r'socket\.(?:emit|on)\("([a-z_:-]+)"', source))
        assert used and used - builtin <= known, (page, used - builtin - known)
