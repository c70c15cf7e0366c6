"""Reading a knowledge base from a file. Bad files raise KnowledgeFormatError naming the
file, the place and the problem."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from services.knowledge.model import Entry, KnowledgeBase


class KnowledgeFormatError(ValueError):
    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        self.source, self.problem, self.line = source, problem, line
        where = f"{source}, line {line}" if line else source
        super().__init__(f"{where}: {problem}")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:120] or "entry"


def parse_intents(document: Any, source: str, lines: dict[int, int] | None = None) -> KnowledgeBase:
    """`{name?, intents: [{name, questions|examples, answer, title?, tags?, escalate?, url?}]}`."""
    if not isinstance(document, dict) or not isinstance(document.get("intents"), list):
        raise KnowledgeFormatError(source, "expected a mapping with an `intents` list")
    entries, seen = [], set()
    for i, item in enumerate(document["intents"]):
        line = (lines or {}).get(i)
        if not isinstance(item, dict):
            raise KnowledgeFormatError(source, f"intent #{i + 1} is not a mapping", line)
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise KnowledgeFormatError(source, f"intent #{i + 1} has no name", line)
        if name in seen:
            raise KnowledgeFormatError(source, f"intent {name!r} appears twice", line)
        seen.add(name)
        questions = item.get("questions", item.get("examples", []))
        if not isinstance(questions, list) or not all(isinstance(q, str) and q.strip() for q in questions):
            raise KnowledgeFormatError(source, f"intent {name!r}: questions must be a list of text", line)
        out_of_scope = bool(item.get("out_of_scope", False))
        answer = item.get("answer", "" if out_of_scope else None)
        if not isinstance(answer, str) or not (answer.strip() or out_of_scope):
            raise KnowledgeFormatError(source, f"intent {name!r} has no answer", line)
        if not questions:
            raise KnowledgeFormatError(source, f"intent {name!r} has no example questions", line)
        tags = item.get("tags", [])
        if not isinstance(tags, list):
            raise KnowledgeFormatError(source, f"intent {name!r}: tags must be a list", line)
        entries.append(Entry(
            id=name.strip(), kind="intent", title=str(item.get("title") or name).strip(),
            answer=answer.strip(), questions=tuple(q.strip() for q in questions),
            tags=tuple(str(t) for t in tags) + (("out_of_scope",) if out_of_scope else ()),
            escalate=bool(item.get("escalate", False)),
            url=item.get("url") or None,
        ))
    if not entries:
        raise KnowledgeFormatError(source, "no intents")
    return KnowledgeBase(tuple(entries), name=str(document.get("name") or Path(source).stem))


def _yaml_item_lines(text: str) -> tuple[Any, dict[int, int]]:
    """Parse YAML and remember the line where each intent starts."""
    node = yaml.compose(text)
    lines: dict[int, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "intents" and isinstance(value, yaml.SequenceNode):
                lines = {i: item.start_mark.line + 1 for i, item in enumerate(value.value)}
    return yaml.safe_load(text), lines


def parse_text(text: str, source: str, kind: str) -> KnowledgeBase:
    if kind == "json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KnowledgeFormatError(source, f"invalid JSON: {exc.msg}", exc.lineno) from None
        return parse_intents(document, source)
    try:
        document, lines = _yaml_item_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise KnowledgeFormatError(
            source, f"invalid YAML: {getattr(exc, 'problem', exc)}", mark.line + 1 if mark else None
        ) from None
    return parse_intents(document, source, lines)


def load_knowledge(path: Path | str) -> KnowledgeBase:
    """Read a knowledge base file (blocking: call it off the event loop)."""
    path = Path(path)
    if not path.exists():
        raise KnowledgeFormatError(str(path), "no such file")
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise KnowledgeFormatError(str(path), f"unsupported file type {suffix!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KnowledgeFormatError(str(path), "not UTF-8 text") from None
    return parse_text(text, str(path), "json" if suffix == ".json" else "yaml")
