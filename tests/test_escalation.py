"""The brief's escalation rules: keywords, confidence below the threshold, technical errors."""

from services.config import Settings
from services.escalation import EscalationPolicy
from services.responders.base import Reply


def policy() -> EscalationPolicy:
    s = Settings(_env_file=None)
    return EscalationPolicy(s.escalation_patterns, s.escalation_confidence_threshold)


def reply(confidence=0.9, needs_human=False):
    return Reply("answer", confidence, "local", needs_human=needs_human, human_reason="legal")


def rules(reasons):
    return [r.rule for r in reasons]


def test_keywords_escalate_case_insensitively_as_whole_words():
    reasons = policy().evaluate("This is URGENT, I want a refund", reply())
    assert rules(reasons) == ["keyword", "keyword"]
    assert {r.detail for r in reasons} == {"urgent", "refund"}
    assert policy().evaluate("what's the refundable amount?", reply()) == []


def test_confidence_below_the_threshold_escalates_and_at_it_does_not():
    assert rules(policy().evaluate("hi", reply(confidence=0.49))) == ["low_confidence"]
    assert policy().evaluate("hi", reply(confidence=0.5)) == []


def test_no_reply_at_all_is_a_technical_error():
    assert rules(policy().evaluate("hi", None)) == ["technical_error"]


def test_a_responder_asking_for_a_person_escalates():
    reasons = policy().evaluate("I will sue you", reply(needs_human=True))
    assert rules(reasons) == ["requested"] and reasons[0].detail == "legal"
