"""The API contract: openapi/ bundled into one document.

The spec is written as several YAML files joined by relative `$ref`s. Clients generated
from it need one document whose shared schemas stay named: every reference to a file
location that the root's `components` names becomes `#/components/...`, and anything
else is inlined. The bundle is what the app routes by, what it serves at
`/api/v1/openapi.json`, and what REST bodies are validated against.

Socket.IO payloads are not REST bodies: their schemas live in `openapi/schemas/events.yaml`
(client to server) and `server-events.yaml` (server to client), outside the OpenAPI
components, and are documented by the AsyncAPI document (services/asyncapi.py).
`resolved_schema` finds a name in either place, so sockets validate against the same rules.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"
EVENT_FILES = ("schemas/events.yaml", "schemas/server-events.yaml")

Location = tuple[Path, str]  # (absolute file, JSON pointer)


@functools.cache
def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _pointer(document: Any, pointer: str) -> Any:
    node = document
    for part in filter(None, pointer.split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _target(ref: str, base: Path) -> Location:
    file_part, _, pointer = ref.partition("#")
    path = (base.parent / file_part).resolve() if file_part else base
    return path, pointer


class _Bundler:
    def __init__(self, root: Path, extra: dict[Location, str] | None = None) -> None:
        self.root = root.resolve()
        self.named: dict[Location, str] = dict(extra or {})
        for section, items in (_load(self.root).get("components") or {}).items():
            for name, item in (items or {}).items():
                local = f"#/components/{section}/{name}"
                self.named[(self.root, local[1:])] = local
                if isinstance(item, dict) and set(item) == {"$ref"}:
                    self.named[_target(item["$ref"], self.root)] = local

    def bundle(self) -> dict[str, Any]:
        document = copy.deepcopy(_load(self.root))
        out = {
            key: self._walk(value, self.root)
            for key, value in document.items()
            if key != "components"
        }
        components: dict[str, Any] = {}
        for section, items in (document.get("components") or {}).items():
            components[section] = {}
            for name, item in (items or {}).items():
                if isinstance(item, dict) and set(item) == {"$ref"}:
                    path, pointer = _target(item["$ref"], self.root)
                    components[section][name] = self._walk(_pointer(_load(path), pointer), path)
                else:
                    components[section][name] = self._walk(item, self.root)
        out["components"] = components
        return out

    def _walk(self, node: Any, base: Path, seen: tuple[Location, ...] = ()) -> Any:
        if isinstance(node, dict):
            if "$ref" in node and isinstance(node["$ref"], str):
                location = _target(node["$ref"], base)
                if location in self.named:
                    return {"$ref": self.named[location]}
                if location in seen:
                    raise ValueError(f"recursive $ref {node['$ref']} in {base.name}")
                path, pointer = location
                return self._walk(
                    copy.deepcopy(_pointer(_load(path), pointer)), path, (*seen, location)
                )
            return {key: self._walk(value, base, seen) for key, value in node.items()}
        if isinstance(node, list):
            return [self._walk(item, base, seen) for item in node]
        return node


@functools.cache
def bundled_spec(name: str = "openapi.yaml") -> dict[str, Any]:
    """The spec file `name` under openapi/, bundled into one document (cached)."""
    return _Bundler(SPEC_DIR / name).bundle()


def api_spec(max_message_length: int) -> dict[str, Any]:
    """The bundled API spec, saying the configured limits (MAX_MESSAGE_LENGTH)."""
    document = copy.deepcopy(bundled_spec("openapi.yaml"))
    document["components"]["schemas"]["MessageText"]["maxLength"] = max_message_length
    return document


def _event_locations() -> dict[Location, str]:
    named: dict[Location, str] = {}
    for relative in EVENT_FILES:
        path = (SPEC_DIR / relative).resolve()
        for name in _load(path) or {}:
            named[(path, f"/{name}")] = f"#/components/schemas/{name}"
    return named


@functools.cache
def event_schemas() -> dict[str, Any]:
    """The Socket.IO payload schemas by name (events.yaml and server-events.yaml). A
    reference to a schema the API spec names, or to another event schema, stays a
    `#/components/schemas/...` reference; anything else is inlined."""
    events = _event_locations()
    bundler = _Bundler(SPEC_DIR / "openapi.yaml", extra=events)
    api_names = {local for location, local in bundler.named.items() if location not in events}
    out: dict[str, Any] = {}
    for (path, pointer), local in events.items():
        name = local.rsplit("/", 1)[1]
        if name in out or local in api_names:
            raise ValueError(f"event schema {name} ({path.name}) is named twice")
        out[name] = bundler._walk(copy.deepcopy(_pointer(_load(path), pointer)), path)
    return out


def resolved_schema(name: str, document: dict[str, Any]) -> dict[str, Any]:
    """The schema `name`, a component of `document` or an event schema, with every
    reference inlined (the document's components first: they carry configured limits)."""
    components = document["components"]["schemas"]
    events = event_schemas()

    def lookup(schema: str) -> Any:
        return components[schema] if schema in components else events[schema]

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(lookup(node["$ref"].rsplit("/", 1)[1]))
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return dict(inline(lookup(name)))


def main(argv: list[str] | None = None) -> None:
    """`python -m services.contract openapi|asyncapi [MAX_MESSAGE_LENGTH]`: print a document
    as the server serves it (for linters such as Spectral, and client generators)."""
    import json
    import sys

    from services.asyncapi import asyncapi_spec

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("openapi", "asyncapi"):
        raise SystemExit("usage: python -m services.contract openapi|asyncapi [MAX_MESSAGE_LENGTH]")
    limit = int(args[1]) if len(args) > 1 else 4000
    document = api_spec(limit) if args[0] == "openapi" else asyncapi_spec(limit)
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
