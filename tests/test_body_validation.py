"""Request bodies and socket payloads: the compiled check only ever accepts what the full
validator accepts, and a payload it refuses gets the full validator's verdict and words."""

from __future__ import annotations

from typing import Any

import pytest
from connexion.exceptions import BadRequestProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.spec import Specification
from connexion.validators import JSONRequestBodyValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.validation import CompiledJSONBodyValidator
from services import compiled_schema
from services.compiled_schema import accepts, compiled
from services.contract import api_spec, resolved_schema
from services.errors import InvalidPayload
from sockets.validation import EVENT_SCHEMAS as EVENTS
from sockets.validation import EventSchemas

SPEC_DOC = api_spec(4000)
SPEC = Specification.from_dict(SPEC_DOC)


def json_schemas() -> dict[str, dict[str, Any]]:
    found = {}
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            content = (
                operation.get("requestBody", {}).get("content", {})
                if isinstance(operation, dict)
                else {}
            )
            if "application/json" in content:
                found[f"{method.upper()} {path}"] = content["application/json"]["schema"]
    return found


SCHEMAS = json_schemas()
COMPILED = sorted(name for name, schema in SCHEMAS.items() if compiled(schema) is not None)


def verdict(validator_cls: type[JSONRequestBodyValidator], schema: dict, body: Any) -> str | None:
    validator = validator_cls(schema=schema, encoding="utf-8", strict_validation=True)
    try:
        validator._validate(body)
    except BadRequestProblem as problem:
        return str(problem.detail)
    return None


def test_the_chat_bodies_are_compiled_and_unshared_keywords_are_not():
    assert {"POST /chat/message", "POST /chat/session"} <= set(COMPILED)
    assert (
        compiled({"type": "object", "properties": {"a": {"type": "string", "nullable": True}}})
        is None
    )
    assert compiled({"type": "integer", "enum": [1, 2]}) is None
    assert compiled({"type": "string", "format": "date-time"}) is None
    assert len(COMPILED) >= len(SCHEMAS) // 2  # most of the API's bodies take the fast path


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def conforming(schema: dict) -> st.SearchStrategy[Any]:
    """Values that match a (compiled, so plain) schema: the bodies a client gets right."""
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = [n for n in properties if n in schema.get("required", [])]
        optional = [n for n in properties if n not in required]
        return st.fixed_dictionaries(
            {n: conforming(properties[n]) for n in required},
            optional={n: conforming(properties[n]) for n in optional},
        )
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 60)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"]).filter(lambda v: low <= len(v) <= high)
        return st.text(min_size=low, max_size=min(high, low + 60))
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(
            conforming(schema.get("items", {})),
            min_size=low,
            max_size=max(low, schema.get("maxItems", 3)),
        )
    return json_values


@st.composite
def bodies(draw: st.DrawFn, schema: dict) -> Any:
    """A conforming body, or one a client got almost right: a key dropped, an unknown one
    added, or one value of any JSON type: where two validators would disagree if they could."""
    body = draw(conforming(schema))
    change = draw(st.sampled_from(["none", "drop", "add", "retype", "anything"]))
    if change == "anything" or not isinstance(body, dict):
        return draw(json_values) if change == "anything" else body
    names = sorted(schema.get("properties", {}))
    if change == "drop" and body:
        body.pop(draw(st.sampled_from(sorted(body))))
    elif change == "add":
        body["unexpected"] = draw(json_values)
    elif change == "retype" and names:
        body[draw(st.sampled_from(names))] = draw(json_values | st.text(max_size=200))
    return body


@pytest.mark.parametrize("name", COMPILED)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_compiled_validator_agrees_with_connexions(name, data):
    schema = SCHEMAS[name]
    body = data.draw(bodies(schema))
    assert verdict(CompiledJSONBodyValidator, schema, body) == verdict(
        JSONRequestBodyValidator, schema, body
    )


def test_a_refused_body_keeps_connexions_words():
    schema = SCHEMAS["POST /chat/message"]
    body = {"sessionId": "x" * 32, "message": "hi", "unexpected": True}
    detail = verdict(CompiledJSONBodyValidator, schema, body)
    assert detail is not None and "unexpected" in detail
    assert detail == verdict(JSONRequestBodyValidator, schema, body)
    assert (
        verdict(CompiledJSONBodyValidator, schema, {"sessionId": "x" * 32, "message": "hi"}) is None
    )


# -- socket events: the same schemas, the same rule ---------------------------------------
EVENT_SCHEMAS = {event: resolved_schema(name, SPEC_DOC) for event, name in EVENTS.items()}
COMPILED_EVENTS = sorted(e for e, schema in EVENT_SCHEMAS.items() if compiled(schema) is not None)
CHECKS = EventSchemas(SPEC_DOC)


def event_verdict(event: str, payload: Any, fast: bool) -> str | None:
    if fast:
        try:
            CHECKS.check(event, payload)
        except InvalidPayload as exc:
            return str(exc)
        return None
    error = next(iter(Draft4RequestValidator(EVENT_SCHEMAS[event]).iter_errors(payload)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "payload"
    return f"{event}: {where}: {error.message[:200]}"


def test_most_socket_events_are_compiled():
    assert {"send-message", "join-chat", "typing"} <= set(COMPILED_EVENTS)


@pytest.mark.parametrize("event", COMPILED_EVENTS)
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_socket_events_get_jsonschemas_verdict(event, data):
    payload = data.draw(bodies(EVENT_SCHEMAS[event]))
    assert event_verdict(event, payload, fast=True) == event_verdict(event, payload, fast=False)


def test_the_compiled_schemas_kept_are_bounded():
    schemas = [
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": i}}}
        for i in range(compiled_schema.KEPT + 10)
    ]
    checks = [compiled(schema) for schema in schemas]
    assert len(compiled_schema._compiled) <= compiled_schema.KEPT
    assert compiled(schemas[0]) is not None  # compiled again once forgotten
    assert compiled(schemas[-1]) is checks[-1]  # a recent one is remembered
    assert accepts(checks[5], {"n": 5}) and not accepts(checks[5], {"n": 4})
