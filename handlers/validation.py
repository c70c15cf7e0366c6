"""Request bodies checked against the spec by a compiled validator first.

Connexion's JSON body validator builds a jsonschema validator for every request and walks
the schema in Python: about 40 µs for a chat message, an eighth of the framework's whole
cost per message (`python -m bench.framework_cost --profile`). A body the compiled check
(services/compiled_schema.py) accepts is valid; one it refuses goes through Connexion's
own validator, so what is refused, and the problem's detail, stay exactly Connexion's.
"""

from __future__ import annotations

from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator

from services.compiled_schema import accepts, compiled


class CompiledJSONBodyValidator(JSONRequestBodyValidator):
    def _validate(self, body: Any) -> dict[str, Any] | None:
        if body is not None and accepts(compiled(self._schema), body):
            return None
        result: dict[str, Any] | None = super()._validate(body)
        return result


def validator_map() -> dict[str, Any]:
    """Connexion's validators, with JSON bodies checked by the compiled validator first."""
    body = MediaTypeDict(VALIDATOR_MAP["body"])
    body["*/*json"] = CompiledJSONBodyValidator
    return {"body": body}
