"""Message catalogues: one flat JSON object per language (`messages/<lang>.json`), keys
`server.*` (sentences the server writes into conversations), `page.*`, `widget.*` and
`console.*` (labels of the chat page, the widget and the agent console), `name.*` (language
names as used inside a sentence).

English is complete and the fallback for any key a catalogue lacks. A company overrides any
text per language with MESSAGES_DIR: a directory of `<lang>.json` files holding only the
keys it changes (its own greeting, its own handoff message); a file for a language we do not
ship adds that language. Placeholders are `{name}` (str.format).
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

BUNDLED = Path(__file__).resolve().parent / "messages"
FALLBACK = "en"
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
PUBLIC_PREFIXES = ("page.", "widget.", "console.", "name.", "language.")


class CatalogueError(ValueError):
    """A catalogue or an override file cannot be read (start-up stops, naming the file)."""


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise CatalogueError(f"{path}: must be one JSON object of strings")
    return data


def load_catalogues(overrides: Path | None = None) -> dict[str, dict[str, str]]:
    """The bundled catalogues with the overrides laid over them (blocking: file reads)."""
    catalogues = {p.stem: _read(p) for p in sorted(BUNDLED.glob("*.json"))}
    if overrides is not None:
        if not overrides.is_dir():
            raise CatalogueError(f"MESSAGES_DIR {overrides} is not a directory")
        for path in sorted(overrides.glob("*.json")):
            if not LANGUAGE_CODE.match(path.stem):
                raise CatalogueError(f"{path}: name it <language code>.json, e.g. de.json")
            catalogues.setdefault(path.stem, {}).update(_read(path))
            log.info("message overrides loaded", extra={"language": path.stem})
    return catalogues


def parse_accept_language(header: str | None) -> list[str]:
    """Primary language codes of an Accept-Language header, most preferred first."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        code = tag.strip().split("-")[0].lower()
        if not LANGUAGE_CODE.match(code):
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, code))
    return [code for _, _, code in sorted(ranked)]


def negotiate(
    supported: frozenset[str] | set[str],
    *,
    setting: str | None = None,
    accept_language: str | None = None,
    detected: str | None = None,
) -> str | None:
    """The customer's language, in this order: the widget's setting, the browser's
    Accept-Language, the language detected in their message; None if none is supported."""
    candidates = [setting.lower().split("-")[0]] if setting else []
    candidates += parse_accept_language(accept_language)
    candidates += [detected] if detected else []
    return next((c for c in candidates if c in supported), None)


@lru_cache(maxsize=1)
def _bundled() -> Catalogues:
    return Catalogues(load_catalogues())


class Catalogues:
    """Texts by key and language; missing keys fall back to English."""

    def __init__(self, catalogues: dict[str, dict[str, str]]) -> None:
        self.catalogues = catalogues
        self.fallback = catalogues.get(FALLBACK, {})

    @classmethod
    def load(cls, overrides: Path | None = None) -> Catalogues:
        return cls(load_catalogues(overrides))

    @classmethod
    def bundled(cls) -> Catalogues:
        """The shipped catalogues without overrides (read once per process)."""
        return _bundled()

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.catalogues)

    def has(self, language: str | None) -> bool:
        return language in self.catalogues

    def text(self, language: str | None, key: str, /, **params: object) -> str:
        """The text of `key` in `language` (else English), with its placeholders filled."""
        catalogue = self.catalogues.get(language or FALLBACK, self.fallback)
        template = catalogue.get(key) or self.fallback.get(key)
        if template is None:
            raise KeyError(f"no message {key!r}")
        return template.format(**params) if params else template

    def words(self, language: str | None, key: str) -> list[str]:
        """A comma-separated list entry (weekday and month names)."""
        return [w.strip() for w in self.text(language, key).split(",")]

    def language_name(self, language: str | None, of: str) -> str:
        """The name of language `of`, as written in `language` ("Englisch" in German)."""
        key = f"name.{of}"
        catalogue = self.catalogues.get(language or FALLBACK, self.fallback)
        return catalogue.get(key) or self.fallback.get(key) or of

    def public(self, language: str) -> dict[str, str]:
        """The labels a page may have: English, then the language's own texts over them."""
        merged = {**self.fallback, **self.catalogues.get(language, {})}
        return {k: v for k, v in merged.items() if k.startswith(PUBLIC_PREFIXES)}
