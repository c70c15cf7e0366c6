"""Public intent datasets: CLINC150's layout (`{split: [[text, label], ...]}`) and
`text,label` CSV (e.g. the Bitext sample). Used by the eval command and the importer."""

from __future__ import annotations

import csv
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
    raise KnowledgeFormatError(str(path), "expected a .json (CLINC150 layout) or .csv (text,label) dataset")


def _load_json(path: Path) -> Dataset:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise KnowledgeFormatError(str(path), f"invalid JSON: {exc.msg}", exc.lineno) from None
    if not isinstance(data, dict):
        raise KnowledgeFormatError(str(path), "expected an object of splits")
    splits: dict[str, list[Example]] = {}
    for name, rows in data.items():
        if not isinstance(rows, list):
            raise KnowledgeFormatError(str(path), f"split {name!r} is not a list")
        for i, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) == 2 and all(isinstance(v, str) for v in row)):
                raise KnowledgeFormatError(str(path), f"split {name!r}, row {i + 1}: expected [text, label]")
        splits[name] = [(text, label) for text, label in rows]
    if "train" not in splits:
        raise KnowledgeFormatError(str(path), "no `train` split")
    return Dataset(splits, {})


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    return next((lowered.index(n) for n in names if n in lowered), None)


def _load_csv(path: Path) -> Dataset:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise KnowledgeFormatError(str(path), "empty file", 1)
        text_col, label_col = _column(header, TEXT_COLUMNS), _column(header, LABEL_COLUMNS)
        answer_col = _column(header, ANSWER_COLUMNS)
        if text_col is None or label_col is None:
            raise KnowledgeFormatError(str(path), f"needs a text column {TEXT_COLUMNS} and a label column {LABEL_COLUMNS}", 1)
        rows: list[Example] = []
        answers: dict[str, str] = {}
        for row in reader:
            line = reader.line_num
            if len(row) <= max(text_col, label_col):
                raise KnowledgeFormatError(str(path), "missing columns", line)
            text, label = row[text_col].strip(), row[label_col].strip()
            if not text or not label:
                raise KnowledgeFormatError(str(path), "empty text or label", line)
            rows.append((text, label))
            if answer_col is not None and len(row) > answer_col and label not in answers:
                answers[label] = row[answer_col].strip()
    return Dataset({"train": rows}, answers)


def knowledge_from_examples(examples: list[Example], answers: dict[str, str] | None = None,
                            name: str = "dataset") -> KnowledgeBase:
    """One intent entry per label; out-of-scope labels become the out-of-scope class."""
    grouped: dict[str, list[str]] = {}
    for text, label in examples:
        grouped.setdefault(label, []).append(text)
    entries = []
    for label, questions in grouped.items():
        oos = label.lower() in OOS_LABELS
        entries.append(Entry(
            id=label, kind="intent", title=label.replace("_", " "),
            answer=(answers or {}).get(label, "" if oos else label.replace("_", " ")),
            questions=tuple(questions), tags=("out_of_scope",) if oos else (),
        ))
    return KnowledgeBase(tuple(entries), name=name)
