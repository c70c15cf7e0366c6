"""What the bot answers at a threshold (`Match.answer`): the best entry once the chance that
it is right reaches the threshold, whichever class is likeliest (Chow's reject option)."""

import pytest

from services.knowledge.model import Entry, Match

ORDER = Entry("order_status", "intent", "Order status", "Track it here.", ("where is my order",))
OTHER = Entry("refunds", "intent", "Refunds", "Five days.", ("refund",))


def out_of_scope_wins(confidence: float) -> Match:
    return Match(None, confidence, top_confidence=1 - confidence, best=ORDER)


@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.3])
def test_below_one_half_the_best_entry_answers_though_out_of_scope_is_likelier(threshold):
    assert out_of_scope_wins(0.3).answer(threshold) is ORDER


@pytest.mark.parametrize("threshold", [0.31, 0.5, 0.9])
def test_under_the_threshold_out_of_scope_stays_a_refusal(threshold):
    assert out_of_scope_wins(0.3).answer(threshold) is None


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7, 1.0])
def test_a_winning_entry_is_the_answer_at_any_threshold(threshold):
    # below the threshold it is still the entry, and its low confidence escalates
    assert Match(ORDER, 0.6, top_confidence=0.6, best=ORDER).answer(threshold) is ORDER


def test_from_one_half_up_the_rule_is_the_likeliest_class():
    # an entry at or above 0.5 is the likeliest class, so only the argmax can answer there
    for confidence in (0.1, 0.3, 0.49):
        match = out_of_scope_wins(confidence)
        assert all(match.answer(t / 100) is None for t in range(50, 101))


def test_nothing_to_answer_without_an_answerable_entry():
    assert Match(None, 0.0, top_confidence=1.0).answer(0.0) is None
    assert Match(OTHER, 0.9, top_confidence=0.9).answer(0.95) is OTHER  # engines before `best`
