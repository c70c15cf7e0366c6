"""Text helpers shared by the rules: normalising, clauses, negation, near-duplicates."""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
_MASKED = re.compile(r"\b([fs])[*#@$%!]{2,}(\w*)")  # f***, s**t: the word the customer meant
_CLAUSE = re.compile(r"[.,;:!?\n()]+|\s(?:but|however|although)\s")
_NOT_WORD = re.compile(r"[^\w\s]|_")

# "no" negates only right before the match ("no agent", "no human needed"); these anywhere
# in the three words before it ("I don't need a human", "never speak to a person").
NEGATORS = frozenset(
    {"not", "never", "dont", "doesnt", "didnt", "neednt", "without", "nobody", "nor"}
)
NEGATION_WINDOW = 3

# Words that carry no meaning when comparing two questions.
FILLERS = frozenset(
    (
        *("a", "an", "the", "i", "im", "said", "again", "please", "pls", "plz", "so", "ok"),
        *("okay", "just", "like", "hello", "hi", "hey", "um", "uh", "well", "sorry", "yes"),
        *("no", "thanks", "thank", "you", "repeat", "asked", "ask", "once", "more", "still"),
    )
)


def normalise(text: str) -> str:
    """Lower case, ASCII apostrophes dropped (don't -> dont), punctuation to spaces."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    text = _MASKED.sub(lambda m: ("fuck" if m[1] == "f" else "shit") + m[2], text)
    text = text.replace("'", "")
    return " ".join(_NOT_WORD.sub(" ", text).split())


def clauses(text: str) -> list[str]:
    """The text split at punctuation and "but", each part normalised; empty parts dropped."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    text = _MASKED.sub(lambda m: ("fuck" if m[1] == "f" else "shit") + m[2], text.lower())
    parts = (normalise(part) for part in _CLAUSE.split(text.replace("'", "")))
    return [part for part in parts if part]


def negated(clause: str, start: int) -> bool:
    """True when a negation comes shortly before position `start` of a normalised clause."""
    before = clause[:start].split()
    if not before:
        return False
    window = before[-NEGATION_WINDOW:]
    if before[-1] == "no" or any(word in NEGATORS for word in window):
        return True
    return " ".join(window).find("no need") >= 0


def content_tokens(text: str) -> list[str]:
    return [t for t in normalise(text).split() if t not in FILLERS]


TYPO_RATIO = 0.85  # difflib's ratio at which two words count as one, mistyped


def typo_of(word: str, other: str) -> bool:
    """Whether two words are one, mistyped (difflib ratio >= TYPO_RATIO). The ratio is
    2 * matches / total length: the cheap upper bounds (lengths alone, then the letters in
    common) settle most pairs before the full match, with the same answer."""
    if 2 * min(len(word), len(other)) < TYPO_RATIO * (len(word) + len(other)):
        return False
    matcher = SequenceMatcher(None, word, other)
    return matcher.quick_ratio() >= TYPO_RATIO and matcher.ratio() >= TYPO_RATIO


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' content words, a typo counting as the same word."""
    ta, tb = set(content_tokens(a)), set(content_tokens(b))
    if not ta or not tb:
        return 0.0
    same = sum(1 for word in ta if word in tb or any(typo_of(word, other) for other in tb))
    return same / (len(ta) + len(tb) - same)
