"""The `requested` rule's matcher: does the customer ask for a person?

Built-in patterns over the normalised text, clause by clause ("can I talk to a human",
"real person please", "agent", "put me through to customer service", "I don't want to talk
to a bot", ...), plus the operator's ESCALATION_REQUEST_PHRASES as whole words. A negation
shortly before a match ("no need for an agent", "I don't need a human") cancels it, and a
person-word used for something else ("my agent code", "someone else", "human error") does
not count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from services.escalation.text import clauses, negated, normalise

ART = r"(?:(?:a|an|the|some|any|one\sof\syour|your|to|me)\s)?"
ADJ = (
    r"(?:(?:real|live|actual|proper|genuine|living|human|customer\sservice"
    r"|customer\ssupport|support|service|sales)\s)?"
)
# Words for a person that mean one on their own ("I want an agent").
STRONG = (
    r"(?:human(?:\sbeing)?s?|agents?|representatives?|reps?|operators?|advis[oe]rs?"
    r"|staff(?:\smembers?)?|members?\sof\s(?:staff|(?:your|the)\s(?:team|staff))|team\smembers?"
    r"|employees?|customer\s(?:service|support|care)|support\s(?:team|staff)|managers?"
    r"|supervisors?|(?:real|live|actual|genuine|living)\s(?:person|people|one|someone)"
    r"|(?:someone|somebody)\sreal)"
)
# Words that mean a person only after "talk to", "transfer me to", "can someone ..." etc.
WEAK = (
    r"(?:person|people|someone|somebody|anyone|anybody)"
    r"(?:\s(?:from|at|in|on)\s(?:your|the)\s\w+|\sfrom\s\w+)?"
)
PERSON = rf"{ART}{ADJ}(?:{STRONG}|{WEAK})"
# "my agent code", "someone else", "human error", "human-readable", "an agent of change"
NOT_A_PERSON = (
    r"(?!\s(?:code|codes|id|ids|number|numbers|login|portal|fee|fees|commission|of\schange"
    r"|else|elses|error|errors|readable|resources|rights|nature|body))\b"
)

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        # talk / speak / chat ... to / with a person
        (
            "talk to a person",
            rf"\b(?:talk|speak|chat|talking|speaking|chatting|get\sthrough|be\sput\sthrough)"
            rf"\s(?:\w+\s){{0,2}}?(?:to|with)\s{PERSON}{NOT_A_PERSON}",
        ),
        # connect / transfer / pass / escalate (me / this) ... to a person
        (
            "transfer to a person",
            r"\b(?:connect|connected|transfer|transferred|put|pass|passed|forward|hand|handed"
            r"|escalate|escalated|route|switch|send)\s(?:(?:me|us|this|it|my\s\w+)\s)?"
            rf"(?:(?:over|back|through|on|directly|right|now|please)\s){{0,2}}(?:to|with)\s"
            rf"{PERSON}{NOT_A_PERSON}",
        ),
        # want / need / get me / ask for / reach ... a human (strong words only)
        (
            "asks for a person",
            r"\b(?:want|wanted|need|needs|get|give|prefer|request|requested|requesting"
            r"|ask\sfor|asked\sfor|asking\sfor|bring|find|have|reach|contact|call|see)\s"
            rf"(?:me\s)?{ART}{ADJ}{STRONG}{NOT_A_PERSON}",
        ),
        ("help from a person", rf"\bhelp\sfrom\s{PERSON}{NOT_A_PERSON}"),
        # "can a person look at this", "please get someone to call me back"
        (
            "a person to act",
            rf"\b(?:can|could|would|will|get|have|need|want)\s{PERSON}\s(?:to\s)?(?:please\s)?"
            r"(?:call|contact|ring|phone|email|look|check|help|assist|get\sback|reach\sout"
            r"|review|answer)\b",
        ),
        # "is there a real person I can talk to", "are there any humans working there"
        (
            "is there a person",
            rf"\b(?:is|are)\sthere\s(?:(?:a|an|any)\s)?{ADJ}(?:{STRONG}|{WEAK}){NOT_A_PERSON}"
            r"(?:\s\w+){0,4}?\s(?:i\scan|i\scould|to\s(?:talk|speak|chat)|available|there"
            r"|working|online|around)\b",
        ),
        # the whole message is a person: "agent", "human please", "a real person now"
        (
            "a person, please",
            r"^(?:(?:hi|hello|hey|ok|okay|yes|so|um|just|please|pls|plz)\s)*"
            r"(?:(?:i\swant|i\sneed|id\slike|i\swould\slike|can\si\s(?:have|get)|could\si"
            r"\s(?:have|get)|may\si\shave|give\sme|get\sme|need|want)\s)?"
            rf"(?:{ART}{ADJ}{STRONG}|escalate(?:\s(?:this|it|me))?)"
            r"(?:\s(?:please|pls|plz|now|asap|right\snow|thanks|thank\syou|needed|required"
            r"|only|here))*$",
        ),
        # "I don't want to talk to a bot", "no more bots", "stop the bot"
        (
            "not the bot",
            r"\b(?:(?:dont|do\snot|doesnt)\s(?:want|wish|like)\sto\s(?:talk|speak|chat)\s"
            r"(?:to|with)\s(?:(?:a|an|the|this|your)\s)?(?:\w+\s)?"
            r"|no\smore\s|enough\swith\s(?:the\s|this\s|your\s)?|stop\s(?:the\s|this\s|your\s)"
            r"|skip\sthe\s|bypass\sthe\s|done\swith\s(?:the\s|this\s|your\s))(?:stupid\s|automated\s)?"
            r"(?:bots?|robots?|machines?|chatbots?|computers?|ai)\b",
        ),
    )
)
UNNEGATABLE = frozenset({"not the bot"})


@dataclass(frozen=True, slots=True)
class RequestMatch:
    pattern: str
    text: str


class RequestMatcher:
    """Finds a request for a person in a customer's message."""

    def __init__(self, phrases: Iterable[str] = ()) -> None:
        self.extra = tuple(
            (phrase, re.compile(r"(?<!\w)" + r"\s".join(map(re.escape, words)) + r"(?!\w)"))
            for phrase in phrases
            if (words := normalise(phrase).split())
        )

    def find(self, message: str) -> RequestMatch | None:
        """The first request for a person in the message, or None."""
        for clause in clauses(message):
            for name, pattern in (*PATTERNS, *self.extra):
                for match in pattern.finditer(clause):
                    if name in UNNEGATABLE or not negated(clause, match.start()):
                        return RequestMatch(name, match.group(0))
        return None
