"""Public intent datasets: CLINC150's layout (`{split: [[text, label], ...]}`) and
`text,label` CSV (e.g. the Bitext sample). Used by the eval command and the importer."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from services.knowledge.formats import KnowledgeFormatError
from services.knowledge.model import Entry, KnowledgeBase

OOS_LABELS = {"oos", "out_of_scope", "out-of-scope"}
TEXT_COLUMNS = ("text", "instruction", "utterance", "question", "query", "sentence")
LABEL_COLUMNS = ("label", "intent", "category")
ANSWER_COLUMNS = ("answer", "response")

Example = tuple[str, str]


@dataclass
class Dataset:
    splits: dict[str, list[Example]]
    answers: dict[str, str]

    def split(self, *names: str) -> list[Example]:
        return [example for name in names for example in self.splits.get(name, [])]


def load_dataset(path: Path | str) -> Dataset:
    path = Path(path)
    if path.suffix.lower() == ".json":
        return _load_json(path)
    if path.suffix.lower() == ".csv":
        return _load_csv(path)
    raise KnowledgeFormatError(
        str(path), "expected a .json (CLINC150 layout) or .csv (text,label) dataset"
    )


def _load_json(path: Path) -> Dataset:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise KnowledgeFormatError(str(path), f"invalid JSON: {exc.msg}", exc.lineno) from None
    return parse_splits(data, str(path))


def is_splits(document: object) -> bool:
    """Does a parsed JSON document look like CLINC150's `{split: [[text, label], ...]}`?"""
    return (
        isinstance(document, dict)
        and "intents" not in document
        and isinstance(document.get("train"), list)
    )


def parse_splits(data: object, source: str) -> Dataset:
    if not isinstance(data, dict):
        raise KnowledgeFormatError(source, "expected an object of splits")
    splits: dict[str, list[Example]] = {}
    for name, rows in data.items():
        if not isinstance(rows, list):
            raise KnowledgeFormatError(source, f"split {name!r} is not a list")
        for i, row in enumerate(rows):
            if not (
                isinstance(row, list)
                and len(row) == 2
                and all(isinstance(v, str) and v.strip() for v in row)
            ):
                raise KnowledgeFormatError(
                    source, f"split {name!r}, row {i + 1}: expected [text, label]"
                )
        splits[name] = [(text.strip(), label.strip()) for text, label in rows]
    if "train" not in splits:
        raise KnowledgeFormatError(source, "no `train` split")
    return Dataset(splits, {})


def is_labelled_csv(header: list[str]) -> bool:
    """A `text,label` header (or one of the synonyms the Bitext and similar sets use)?"""
    return _column(header, TEXT_COLUMNS) is not None and _column(header, LABEL_COLUMNS) is not None


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    return next((lowered.index(n) for n in names if n in lowered), None)


def _load_csv(path: Path) -> Dataset:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KnowledgeFormatError(str(path), "not UTF-8 text") from None
    return parse_labelled_csv(text, str(path))


def parse_labelled_csv(text: str, source: str) -> Dataset:
    """`text,label[,answer]` rows, all in one `train` split."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise KnowledgeFormatError(source, "empty file", 1)
    text_col, label_col = _column(header, TEXT_COLUMNS), _column(header, LABEL_COLUMNS)
    answer_col = _column(header, ANSWER_COLUMNS)
    if text_col is None or label_col is None:
        raise KnowledgeFormatError(
            source, f"needs a text column {TEXT_COLUMNS} and a label column {LABEL_COLUMNS}", 1
        )
    rows: list[Example] = []
    answers: dict[str, str] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(text_col, label_col):
                raise KnowledgeFormatError(source, "missing columns", line)
            utterance, label = row[text_col].strip(), row[label_col].strip()
            if not utterance or not label:
                raise KnowledgeFormatError(source, "empty text or label", line)
            rows.append((utterance, label))
            if (
                answer_col is not None
                and len(row) > answer_col
                and row[answer_col].strip()
                and label not in answers
            ):
                answers[label] = row[answer_col].strip()
    except csv.Error as exc:
        raise KnowledgeFormatError(source, f"invalid CSV: {exc}", reader.line_num) from None
    if not rows:
        raise KnowledgeFormatError(source, "no rows")
    return Dataset({"train": rows}, answers)


def knowledge_from_examples(
    examples: list[Example], answers: dict[str, str] | None = None, name: str = "dataset"
) -> KnowledgeBase:
    """One intent entry per label; out-of-scope labels become the out-of-scope class."""
    grouped: dict[str, list[str]] = {}
    for text, label in examples:
        grouped.setdefault(label, []).append(text)
    entries = []
    for label, questions in grouped.items():
        oos = label.lower() in OOS_LABELS
        entries.append(
            Entry(
                id=label,
                kind="intent",
                title=label.replace("_", " "),
                answer=(answers or {}).get(label, "" if oos else label.replace("_", " ")),
                questions=tuple(questions),
                tags=("out_of_scope",) if oos else (),
            )
        )
    return KnowledgeBase(tuple(entries), name=name)


def as_knowledge(dataset: Dataset, name: str = "dataset") -> KnowledgeBase:
    """A dataset imported as a knowledge base: its training splits become intents."""
    return knowledge_from_examples(dataset.split("train", "oos_train"), dataset.answers, name=name)
