"""The `frustration` rule: anger, insults, strong negative sentiment.

Two signals, either enough:
- VADER (vaderSentiment, an offline lexicon-and-rules model): a compound score at or below
  ESCALATION_FRUSTRATION_THRESHOLD (-1 very negative .. +1 very positive);
- a small lexicon of our own for what VADER scores weakly or not at all in support chats:
  insults aimed at the bot or the shop ("stupid bot", "you people are incompetent"),
  swearing (also masked, "f***"), exasperation ("how many times", "for the third time",
  "that's not what I asked", "waste of my time") and SHOUTING with an exclamation mark.
  A negation just before a word cancels it ("I'm not angry, just curious").
Plain product trouble ("the item arrived damaged", "my order is late") is not frustration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
    SentimentIntensityAnalyzer,
)

from services.escalation.text import clauses, negated

# Words and phrases that are frustration unless negated just before.
NEGATABLE = re.compile(
    r"\b(?:stupid|idiots?|idiotic|dumb|dumbest|morons?|moronic|imbeciles?|clueless|brainless"
    r"|incompetent|useless|pathetic|worthless|rubbish|garbage|trash|crap|crappy|shit|shitty"
    r"|bullshit|wtf|ffs|fuck\w*|goddamn|damn\sit|bloody\shell|ridiculous|unacceptable"
    r"|disgrace|disgraceful|disgusting|appalling|outrageous|pissed(?:\soff)?|furious|livid"
    r"|fuming|angry|annoyed|annoying|frustrated|frustrating|infuriating|sick\sand\stired"
    r"|fed\sup|sick\sof|had\senough|nonsense|scammers?|scammed|rip\s?off|ripped\soff"
    r"|hate(?!\sto\b)|sucks?|waste\sof\s(?:my\s|your\s)?time|wasting\s(?:my|our)\stime"
    r"|(?:the\s)?worst\s(?:\w+\s)?(?:ever|service|shop|store|company|experience|bot|chatbot"
    r"|support|website|site|answer)|useless"
    r"|(?:terrible|awful|horrible|dreadful|abysmal|atrocious|shocking)\s(?:\w+\s)?"
    r"(?:service|support|experience|company|shop|store|website|bot|chatbot|answer|help)"
    r"|(?:this|that|it|you|your\s\w+)\s(?:is|s|are|re|was|were)\s(?:\w+\s)?"
    r"(?:terrible|awful|horrible|dreadful|abysmal|atrocious|a\sdisaster))\b"
)
# Phrases that are frustration as they stand (several carry their own negation).
FIXED = re.compile(
    r"\b(?:how\smany\stimes|for\sthe\s(?:second|third|fourth|fifth|tenth|last|\d+\w*)\stime"
    r"|(?:second|third|fourth|fifth|tenth)\stime\s(?:i|im|ive|that)"
    r"|(?:are\syou|youre|you\sare)\s(?:even\s)?(?:listening|reading|serious|kidding)"
    r"|kidding\sme|not\swhat\si\s(?:asked|said|meant|wanted)"
    r"|(?:you|it|this\sbot)\s(?:dont|doesnt|do\snot|does\snot|never|cant)\s"
    r"(?:understand|listen|help|read)"
    r"|(?:no|not\sany)\shelp\sat\sall|(?:you\sare|youre|youve\sbeen)\s(?:\w+\s)?no\shelp"
    r"|not\shelping|not\shelpful|unhelpful|beyond\sa\sjoke|joke\sof\sa"
    r"|(?:this|that|it|you|your\s\w+)\s(?:is|s|are|re|was)\s(?:a\s)?(?:total\s|complete\s"
    r"|absolute\s|bad\s)?(?:joke|scam|con)\b"
    r"|(?:you\sguys|you\speople|you)\s(?:are|re)\s(?:a\s)?(?:total\s|complete\s)?"
    r"(?:joke|scam|disgrace|clowns|useless)"
    r"|what\sa\s(?:joke|scam|waste|shambles|mess)|what\sthe\s(?:hell|heck|fuck)"
    r"|never\s(?:ordering|buying|shopping|using|coming\sback|again)"
    r"|shut\sup|screw\syou|go\sto\shell|piss\soff)\b"
)
EXCLAMATION = re.compile(r"[!?]\s*[!?]|!")
SERIOUSLY = re.compile(r"\bseriously\s*[?!]", re.I)
SHOUT_MIN_LETTERS = 10
SHOUT_UPPER_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class Frustration:
    detail: str


class FrustrationDetector:
    """Decides whether a message is angry, insulting or strongly negative."""

    def __init__(self, threshold: float = -0.6) -> None:
        self.threshold = threshold

    @cached_property
    def vader(self) -> SentimentIntensityAnalyzer:
        return SentimentIntensityAnalyzer()  # reads its lexicon file once (about 50 ms)

    def compound(self, message: str) -> float:
        """VADER's compound score of the message, -1 (very negative) to +1."""
        return float(self.vader.polarity_scores(message)["compound"])

    def find(self, message: str) -> Frustration | None:
        """Why the message reads as frustrated, or None."""
        for clause in clauses(message):
            if found := FIXED.search(clause):
                return Frustration(f"said {found.group(0)!r}")
            for word in NEGATABLE.finditer(clause):
                if not negated(clause, word.start()):
                    return Frustration(f"said {word.group(0)!r}")
        if SERIOUSLY.search(message):
            return Frustration("said 'seriously'")
        letters = [c for c in message if c.isalpha()]
        if (
            len(letters) >= SHOUT_MIN_LETTERS
            and sum(c.isupper() for c in letters) >= SHOUT_UPPER_SHARE * len(letters)
            and EXCLAMATION.search(message)
        ):
            return Frustration("shouting")
        score = self.compound(message)
        if score <= self.threshold:
            return Frustration(f"sentiment {score:.2f} <= {self.threshold:g}")
        return None
