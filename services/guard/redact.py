"""Finding personal data in free text and replacing it with numbered placeholders.

What is found: e-mail addresses, phone numbers (the `phonenumbers` library's matcher,
with a default region for numbers written without a country code), payment card
numbers (13 to 19 digits, spaces or dashes allowed, Luhn-checked) and IBANs (checked
with their mod-97 checksum). Each distinct value becomes `[email 1]`, `[phone 2]`,
`[card 1]`, `[iban 1]`, … so a model can still say "the card you gave ([card 1])";
one `Redactor` numbers consistently across all the texts it is given.

Used always for log records (services.logs) and, when REDACT_PII_FOR_LLM is on, for
what is sent to a model provider (services.chat). The stored transcript is not changed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import phonenumbers

from services.responders.base import Prompt, Turn

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
CARD = re.compile(r"(?<![\d-])\d(?:[ \-]?\d){12,18}(?![\d])")
IBAN = re.compile(r"(?=\b([A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,32}))", re.IGNORECASE)  # every start
DIGITS = re.compile(r"\d")
MIN_PHONE_DIGITS = 6


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_ok(compact: str) -> bool:
    compact = compact.upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    moved = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in moved))
    except ValueError:
        return False
    return number % 97 == 1


class Redactor:
    """Replaces personal data with placeholders, the same value with the same one."""

    def __init__(self, region: str = "US") -> None:
        self.region = region.upper()
        self._seen: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def _placeholder(self, kind: str, value: str) -> str:
        key = (kind, re.sub(r"[\s\-().]", "", value).lower())
        if key not in self._seen:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self._seen[key] = f"[{kind} {self._counts[kind]}]"
        return self._seen[key]

    def redact(self, text: str) -> str:
        if not text:
            return text
        if "@" in text:
            text = EMAIL.sub(lambda m: self._placeholder("email", m.group(0)), text)
        if len(DIGITS.findall(text)) < MIN_PHONE_DIGITS:
            return text
        text = _replace(text, _ibans(text), lambda v: self._placeholder("iban", v))
        text = _replace(text, _cards(text), lambda v: self._placeholder("card", v))
        return _replace(text, self._phones(text), lambda v: self._placeholder("phone", v))

    def _phones(self, text: str) -> Iterator[tuple[int, int]]:
        for match in phonenumbers.PhoneNumberMatcher(text, self.region):
            yield match.start, match.end


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for m in IBAN.finditer(text):
        # the pattern may run into following words: the longest prefix that checks out
        chars = [(i, ch) for i, ch in enumerate(m.group(1)) if ch != " "]
        for end in range(len(chars), 14, -1):
            if iban_ok("".join(ch for _, ch in chars[:end])):
                yield m.start(), m.start() + chars[end - 1][0] + 1
                break


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for m in CARD.finditer(text):
        if luhn_ok(re.sub(r"\D", "", m.group(0))):
            yield m.start(), m.end()


def _replace(text: str, spans: Iterator[tuple[int, int]], sub: Any) -> str:
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:
            continue
        out += [text[last:start], sub(text[start:end])]
        last = end
    return "".join(out) + text[last:] if out else text


def redact(text: str, region: str = "US") -> str:
    """`text` with its personal data replaced by placeholders."""
    return Redactor(region).redact(text)


def redact_prompt(prompt: Prompt, region: str = "US") -> Prompt:
    """The prompt as a model provider may see it: the customer's message and the history
    redacted with one numbering (the knowledge passages are the company's, left as they are)."""
    r = Redactor(region)
    history = tuple(Turn(t.role, r.redact(t.content)) for t in prompt.history)
    return replace(prompt, message=r.redact(prompt.message), history=history)


class RedactingFilter(logging.Filter):
    """Takes personal data out of every part of a log record that is text: the message
    (with its arguments), extra fields, and the formatted traceback."""

    def __init__(self, region: str = "US") -> None:
        super().__init__()
        self.region = region

    def filter(self, record: logging.LogRecord) -> bool:
        r = Redactor(self.region)
        message = record.getMessage()
        record.msg, record.args = r.redact(message), None
        for key, value in list(record.__dict__.items()):
            if key in _SKIP or key.startswith("_"):
                continue
            if isinstance(value, str):
                record.__dict__[key] = r.redact(value)
            elif isinstance(value, dict | list | tuple):
                record.__dict__[key] = _deep(value, r)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = r.redact(record.exc_text)  # formatters use it as it is
        return True


_SKIP = {
    "name",
    "levelname",
    "pathname",
    "filename",
    "module",
    "funcName",
    "processName",
    "threadName",
    "taskName",
    "msg",
    "args",
    "exc_text",
    "stack_info",
}


def _deep(value: Any, r: Redactor) -> Any:
    if isinstance(value, str):
        return r.redact(value)
    if isinstance(value, dict):
        return {k: _deep(v, r) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep(v, r) for v in value]
    return value
