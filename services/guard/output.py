"""Output safety: a model's reply that leaks the system prompt is never shown.

The system prompt carries a per-process secret canary (`canary()`). A reply is withheld
when it contains the canary (compared on letters and digits only, so spacing, dashes,
case or zero-width characters do not hide it) or when it shares at least
`MIN_VERBATIM` characters in a row with the system prompt (compared after folding case,
removing invisible characters and collapsing white space). The chain then answers with
`SAFE_ANSWER`, flags the reply (`Reply.flag == "safety"`, which escalates with rule
`safety`), counts it and logs the kind of leak, never the text.

While streaming, `StreamScreen` holds back the last `MIN_VERBATIM` characters so a leak is
caught before any of it reaches the customer.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import cache

SAFETY = "safety"
MIN_VERBATIM = 60
SAFE_ANSWER = (
    "Sorry, I can't help with that request. I can answer questions about our products, "
    "orders, shipping and policies."
)
CANARY = "canary"
SYSTEM_PROMPT = "system prompt"

INVISIBLE = re.compile(
    r"[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\ufeff\U000e0000-\U000e007f]"
)
_SPACE = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


@cache
def canary() -> str:
    """This process's secret marker in the system prompt (new at every start)."""
    return f"cnry-{secrets.token_hex(8)}"


def fold(text: str) -> str:
    """Compatibility-normalised, case-folded, invisible characters gone, white space single."""
    text = INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).casefold()
    return _SPACE.sub(" ", text).strip()


@dataclass
class OutputGuard:
    """Checks replies against one system prompt and its canary."""

    system_prompt: str
    canary: str
    min_verbatim: int = MIN_VERBATIM
    flagged: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        folded = fold(self.system_prompt)
        n = self.min_verbatim
        self._windows = {folded[i : i + n] for i in range(max(0, len(folded) - n + 1))}
        self._canary = _NOT_ALNUM.sub("", self.canary.casefold())

    def leak(self, text: str) -> str | None:
        """What the text leaks (`canary` or `system prompt`), or None."""
        folded = fold(text)
        if self._canary and self._canary in _NOT_ALNUM.sub("", folded):
            return CANARY
        n = self.min_verbatim
        if any(folded[i : i + n] in self._windows for i in range(len(folded) - n + 1)):
            return SYSTEM_PROMPT
        return None

    @property
    def holdback(self) -> int:
        """Characters a stream keeps back, so a leak is caught before any of it is shown."""
        return max(self.min_verbatim, len(self.canary))


@dataclass
class StreamScreen:
    """The streamed answer text, released only once it is clear of a leak."""

    guard: OutputGuard
    text: str = ""
    sent: int = 0
    leaked: str | None = None

    def feed(self, chunk: str) -> str:
        """Add streamed text; return what may be shown now (empty after a leak)."""
        self.text += chunk
        if self.leaked is None:
            self.leaked = self.guard.leak(self.text)
        if self.leaked is not None:
            return ""
        upto = max(self.sent, len(self.text) - self.guard.holdback)
        out, self.sent = self.text[self.sent : upto], upto
        return out

    def rest(self) -> str:
        """The text still held back, once the whole reply was found clean."""
        out, self.sent = self.text[self.sent :], len(self.text)
        return out
