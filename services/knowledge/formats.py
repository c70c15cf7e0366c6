"""Reading a knowledge base from a file. Bad files raise KnowledgeFormatError naming the
file, the place and the problem."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
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
        if not isinstance(questions, list) or not all(
            isinstance(q, str) and q.strip() for q in questions
        ):
            raise KnowledgeFormatError(
                source, f"intent {name!r}: questions must be a list of text", line
            )
        out_of_scope = bool(item.get("out_of_scope", False))
        answer = item.get("answer", "" if out_of_scope else None)
        if not isinstance(answer, str) or not (answer.strip() or out_of_scope):
            raise KnowledgeFormatError(source, f"intent {name!r} has no answer", line)
        if not questions:
            raise KnowledgeFormatError(source, f"intent {name!r} has no example questions", line)
        tags = item.get("tags", [])
        if not isinstance(tags, list):
            raise KnowledgeFormatError(source, f"intent {name!r}: tags must be a list", line)
        entries.append(
            Entry(
                id=name.strip(),
                kind="intent",
                title=str(item.get("title") or name).strip(),
                answer=answer.strip(),
                questions=tuple(q.strip() for q in questions),
                tags=tuple(str(t) for t in tags) + (("out_of_scope",) if out_of_scope else ()),
                escalate=bool(item.get("escalate", False)),
                url=item.get("url") or None,
            )
        )
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
        from services.knowledge import datasets  # it imports this module

        if datasets.is_splits(document):  # CLINC150's layout: its train splits become intents
            return datasets.as_knowledge(datasets.parse_splits(document, source), Path(source).stem)
        return parse_intents(document, source)
    try:
        document, lines = _yaml_item_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise KnowledgeFormatError(
            source, f"invalid YAML: {getattr(exc, 'problem', exc)}", mark.line + 1 if mark else None
        ) from None
    return parse_intents(document, source, lines)


def parse_faq_csv(text: str, source: str) -> KnowledgeBase:
    """`question,answer` rows; rows sharing an answer become one entry. A `text,label`
    CSV (a public intent dataset such as Bitext's) becomes one intent per label."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or [h.strip().lower() for h in header[:2]] != ["question", "answer"]:
        from services.knowledge import datasets  # it imports this module

        if header and datasets.is_labelled_csv(header):
            return datasets.as_knowledge(
                datasets.parse_labelled_csv(text, source), Path(source).stem
            )
        raise KnowledgeFormatError(
            source,
            "the first row must be the header `question,answer` (FAQ) "
            "or `text,label` (intent dataset)",
            1,
        )
    by_answer: dict[str, list[str]] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise KnowledgeFormatError(source, "each row needs a question and an answer", line)
            by_answer.setdefault(row[1].strip(), []).append(row[0].strip())
    except csv.Error as exc:
        raise KnowledgeFormatError(source, f"invalid CSV: {exc}", reader.line_num) from None
    if not by_answer:
        raise KnowledgeFormatError(source, "no rows")
    entries, used = [], set()
    for answer, questions in by_answer.items():
        entry_id = slug(questions[0])
        while entry_id in used:
            entry_id += "_"
        used.add(entry_id)
        entries.append(
            Entry(
                id=entry_id,
                kind="faq",
                title=questions[0],
                answer=answer,
                questions=tuple(questions),
            )
        )
    return KnowledgeBase(tuple(entries), name=Path(source).stem)


class _HtmlText(HTMLParser):
    """Headings and text of an HTML page, as Markdown-like lines."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.heading: int | None = None
        self.anchor: str | None = None
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in ("h1", "h2", "h3"):
            self.heading = int(tag[1])
            self.anchor = dict(attrs).get("id")
            self.lines.append("#" * self.heading + " ")
        elif tag in ("p", "li", "br", "div", "tr"):
            self.lines.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1
        elif tag in ("h1", "h2", "h3"):
            self.heading = None
            if self.anchor:  # the page's own anchor, in Markdown's `{#id}` form
                self.lines[-1] = f"{self.lines[-1].rstrip()} {{#{self.anchor}}}"
                self.anchor = None
            self.lines.append("")

    def handle_data(self, data: str) -> None:
        if not self.skip and data.strip():
            if not self.lines:
                self.lines.append("")
            self.lines[-1] += data.strip() + " "


MAX_PASSAGE = 1500  # characters; a longer section is split at sentence ends, same anchor


def split_passage(content: str, limit: int = MAX_PASSAGE) -> list[str]:
    """A section's text in pieces of at most about `limit` characters, cut between sentences."""
    if len(content) <= limit:
        return [content]
    pieces, current = [], ""
    for sentence in re.split(r"(?<=[.!?])\s+", content):
        while len(sentence) > limit:  # one very long sentence: cut it at a space
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return [piece for piece in pieces if piece]


def parse_article(text: str, source: str, html: bool = False) -> list[Entry]:
    """Split an article into passages at headings: title, anchor and source URL each.

    The URL comes from a first line `url: ...` (or `<!-- url: ... -->`, or a
    `<link rel="canonical">`); the anchor from the heading (`## Title {#anchor}` or an
    HTML heading's `id` when given, else the title as GitHub would slug it, with `-1`,
    `-2` for repeats). A long section becomes several passages (`id~2`, ...) with the same URL."""
    url_match = re.search(
        r"^(?:<!--\s*)?url:\s*(\S+?)(?:\s*-->)?\s*$", text, re.MULTILINE
    ) or re.search(r'<link[^>]+rel="canonical"[^>]+href="([^"]+)"', text)
    base_url = url_match.group(1) if url_match else None
    if html:
        parser = _HtmlText()
        parser.feed(text)
        text = "\n".join(parser.lines)
    stem = Path(source).stem
    passages: list[Entry] = []
    title = stem.replace("-", " ").replace("_", " ")
    body: list[str] = []

    anchors: dict[str, int] = {}
    given: str | None = None

    def flush() -> None:
        content = " ".join(line.strip() for line in body if line.strip())
        if not content:
            return
        anchor = given or slug(title).replace("_", "-")
        seen = anchors.get(anchor, 0)
        anchors[anchor] = seen + 1
        if seen and not given:
            anchor = f"{anchor}-{seen}"
        for part, piece in enumerate(split_passage(content), start=1):
            passages.append(
                Entry(
                    id=f"{stem}#{anchor}" + (f"~{part}" if part > 1 else ""),
                    kind="passage",
                    title=title,
                    answer=piece,
                    url=f"{base_url}#{anchor}" if base_url else None,
                )
            )

    for line in text.splitlines():
        heading = re.match(r"^(#{1,3})\s+(.*?)(?:\s*\{#([\w.:-]+)\})?\s*$", line)
        if heading:
            flush()
            title, given, body = heading.group(2).strip(), heading.group(3), []
        elif not re.match(r"^(?:<!--\s*)?url:", line):
            body.append(line)
    flush()
    if not passages:
        raise KnowledgeFormatError(source, "no text in article")
    return passages


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KnowledgeFormatError(str(path), "not UTF-8 text") from None


def load_file(path: Path) -> KnowledgeBase:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        return parse_text(_read(path), str(path), "json" if suffix == ".json" else "yaml")
    if suffix == ".csv":
        return parse_faq_csv(_read(path), str(path))
    if suffix in (".md", ".markdown", ".html", ".htm"):
        return KnowledgeBase(
            tuple(parse_article(_read(path), str(path), html=suffix.startswith(".htm"))),
            name=path.stem,
        )
    raise KnowledgeFormatError(str(path), f"unsupported file type {suffix!r}")


def merge(bases: list[KnowledgeBase], name: str) -> KnowledgeBase:
    entries, seen = [], set()
    for kb in bases:
        for entry in kb.entries:
            if entry.id in seen:
                raise KnowledgeFormatError(name, f"entry {entry.id!r} is defined twice")
            seen.add(entry.id)
            entries.append(entry)
    return KnowledgeBase(tuple(entries), name=name)


def load_knowledge(path: Path | str) -> KnowledgeBase:
    """Read a knowledge base: an intents file (YAML/JSON), an FAQ CSV, an article
    (Markdown/HTML), or a folder of any of these (blocking: call it off the event loop)."""
    path = Path(path)
    if not path.exists():
        raise KnowledgeFormatError(str(path), "no such file")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise KnowledgeFormatError(str(path), "no knowledge files in this folder")
        return merge([load_file(p) for p in files], path.name)
    return load_file(path)


SUFFIXES = (".yaml", ".yml", ".json", ".csv", ".md", ".markdown", ".html", ".htm")
