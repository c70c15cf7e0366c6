"""A schema compiled once (fastjsonschema) to accept valid payloads fast.

jsonschema walks a schema in Python for every payload: 30-40 µs for a chat message. The
same schema compiled by fastjsonschema accepts a valid one in about 3 µs. The compiled check
is only ever trusted to accept: whatever it refuses is checked again by the validator the
caller already had, so what is refused, and the words saying why, stay that validator's.
Schemas where the two could disagree the other way (a `format`, OpenAPI's `nullable` and
read/write-only markers, `enum`, which fastjsonschema compares with `==` so that `true`
equals `1`, or a `$ref` left unresolved) are not compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema

UNSHARED = frozenset(
    {"format", "nullable", "x-nullable", "readOnly", "writeOnly", "x-writeOnly", "enum", "$ref"}
)

Check = Callable[[Any], Any]  # raises fastjsonschema.JsonSchemaException when not valid
Refused = fastjsonschema.JsonSchemaException
KEPT = 512  # schemas remembered (an app has a few dozen; tests build many apps)
_compiled: dict[int, tuple[dict[str, Any], Check | None]] = {}


def _shared(node: Any) -> bool:
    if isinstance(node, dict):
        return not UNSHARED.intersection(node) and all(_shared(v) for v in node.values())
    if isinstance(node, list):
        return all(_shared(v) for v in node)
    return True


def compiled(schema: dict[str, Any]) -> Check | None:
    """The compiled check of a resolved, long-lived schema, or None when it is not safe.
    Connexion hangs the spec's components on every body schema (their references already
    resolved in place); they are not part of what a payload must match."""
    known = _compiled.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    check: Check | None = None
    if _shared({k: v for k, v in schema.items() if k != "components"}):
        try:
            check = fastjsonschema.compile(schema, use_default=False, use_formats=False)
        except fastjsonschema.JsonSchemaDefinitionException:
            check = None
    if len(_compiled) >= KEPT:  # the oldest goes: a later call compiles it again
        del _compiled[next(iter(_compiled))]
    _compiled[id(schema)] = (schema, check)  # the schema is kept, so its id stays its own
    return check


def accepts(check: Check | None, payload: Any) -> bool:
    """True when the compiled check accepts the payload (False: ask the full validator)."""
    if check is None:
        return False
    try:
        check(payload)
    except Refused:
        return False
    return True
