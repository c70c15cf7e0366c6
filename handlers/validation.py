"""Request bodies checked against the spec by a compiled validator first.

Connexion's JSON body validator builds a jsonschema validator for every request and walks
the schema in Python: about 40 µs for a chat message, an eighth of the framework's whole
cost per message (`python -m bench.framework_cost --profile`). The same schema compiled
once by fastjsonschema accepts a valid body in about 3 µs. It only ever accepts: a body it
refuses goes through Connexion's own validator, so what is refused, and the problem's
detail, stay exactly Connexion's. Schemas where the two could disagree in the other
direction (a `format`, OpenAPI's `nullable` and read/write-only markers, `enum`, which
fastjsonschema compares with `==` so that `true` equals `1`, or a `$ref` left unresolved)
are left to Connexion alone.
"""

from __future__ import annotations

from typing import Any

import fastjsonschema
from connexion.datastructures import MediaTypeDict
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator

# Keywords whose meaning fastjsonschema (draft 4) and Connexion's validator (draft 4 with
# OpenAPI's nullable) do not share exactly; a schema using any of them is not compiled.
UNSHARED = frozenset(
    {"format", "nullable", "x-nullable", "readOnly", "writeOnly", "x-writeOnly", "enum", "$ref"}
)

Check = Any  # a compiled validator: raises fastjsonschema.JsonSchemaException
_compiled: dict[int, tuple[dict[str, Any], Check | None]] = {}


def _shared(node: Any) -> bool:
    if isinstance(node, dict):
        return not UNSHARED.intersection(node) and all(_shared(v) for v in node.values())
    if isinstance(node, list):
        return all(_shared(v) for v in node)
    return True


def compiled(schema: dict[str, Any]) -> Check | None:
    """The compiled check of a (resolved, long-lived) schema, or None when it is not safe."""
    known = _compiled.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    check = None
    # Connexion hangs the spec's components on every body schema (its refs are already
    # resolved in place): not part of what the body must match.
    if _shared({k: v for k, v in schema.items() if k != "components"}):
        try:
            check = fastjsonschema.compile(schema, use_default=False, use_formats=False)
        except fastjsonschema.JsonSchemaDefinitionException:
            check = None
    _compiled[id(schema)] = (schema, check)  # the schema is kept, so its id stays its own
    return check


class CompiledJSONBodyValidator(JSONRequestBodyValidator):
    def _validate(self, body: Any) -> dict[str, Any] | None:
        check = compiled(self._schema) if body is not None else None
        if check is not None:
            try:
                check(body)
            except fastjsonschema.JsonSchemaException:
                pass  # Connexion's validator says what is wrong, in its words
            else:
                return None
        result: dict[str, Any] | None = super()._validate(body)
        return result


def validator_map() -> dict[str, Any]:
    """Connexion's validators, with JSON bodies checked by the compiled validator first."""
    body = MediaTypeDict(VALIDATOR_MAP["body"])
    body["*/*json"] = CompiledJSONBodyValidator
    return {"body": body}
