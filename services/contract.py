"""The API contract: openapi/ bundled into one document.

The spec is written as several YAML files joined by relative `$ref`s. Clients generated
from it need one document whose shared schemas stay named: every reference to a file
location that the root's `components` names becomes `#/components/...`, and anything
else is inlined. The bundle is what the app routes by, what it serves at
`/api/v1/openapi.json`, and what socket payloads are validated against.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"

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
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.named: dict[Location, str] = {}
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


def resolved_schema(name: str, document: dict[str, Any]) -> dict[str, Any]:
    """A component schema of `document` with every reference inlined, for validators."""

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(_pointer(document, node["$ref"][1:]))
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(document["components"]["schemas"][name])
