"""The embedded responder: the best entry's answer, its confidence and source; escalate
topics hand over; out of scope is a polite refusal with low confidence."""

import asyncio

import pytest

from services.knowledge.service import KnowledgeService
from services.responders.base import Prompt, Reply, Source
from services.responders.local import OUT_OF_SCOPE, LocalResponder
from tests.conftest import make_settings


@pytest.fixture(scope="module")
async def local():
    knowledge = KnowledgeService(make_settings())
    await knowledge.start()
    yield LocalResponder(knowledge)
    await knowledge.aclose()


async def test_a_routine_question_gets_the_entry_answer_with_its_source(local):
    reply = await local.respond(Prompt("How do I reset my password?"))
    entry = local.knowledge.kb.get("reset_password")
    assert isinstance(reply, Reply) and local.name == reply.provider == "local"
    assert reply.text == entry.answer and reply.confidence >= 0.5
    assert reply.sources == (Source(entry.id, entry.title, reply.confidence, entry.url),)
    assert reply.needs_human is False and reply.human_reason is None


async def test_an_escalate_topic_answers_and_asks_for_a_person(local):
    reply = await local.respond(Prompt("I want you to delete my account and all my data"))
    assert reply.sources[0].id == "delete_account"
    assert reply.needs_human is True and "person" in reply.human_reason


async def test_out_of_scope_is_a_polite_refusal_with_low_confidence(local):
    reply = await local.respond(Prompt("what is the capital of peru"))
    assert reply.text == OUT_OF_SCOPE and reply.confidence < 0.5 and reply.sources == ()
    assert reply.needs_human is False  # the chat service applies the threshold, not the responder


async def test_confidence_is_the_engine_s_and_ignores_the_callers_context(local):
    prompt = Prompt("where is my parcel", context=(Source("gift_cards", "Gift cards", 0.9),))
    reply = await local.respond(prompt)
    match = await local.knowledge.match("where is my parcel")
    assert reply.sources[0].id == match.entry.id == "order_status"
    assert reply.confidence == pytest.approx(match.confidence)


async def test_an_article_passage_answers_when_no_intent_fits(tmp_path):
    (tmp_path / "intents.yaml").write_text(
        "intents:\n"
        "  - name: hours\n    questions: ['When are you open?', opening hours]\n    answer: 9 to 5.\n"
        "  - name: loyalty\n    questions: [reward points, loyalty programme]\n    answer: One point per dollar.\n"
        "  - name: other\n    out_of_scope: true\n    questions: [leather jacket repair shop, boots weather]\n"
    )
    (tmp_path / "care.md").write_text(
        "url: https://acme.example/care\n# Caring for leather boots\n"
        "Wipe leather boots with a damp cloth and use a wax conditioner monthly.\n"
    )
    knowledge = KnowledgeService(make_settings(knowledge_base_path=tmp_path))
    await knowledge.start()
    try:
        reply = await LocalResponder(knowledge).respond(
            Prompt("how do I clean leather boots with wax")
        )
    finally:
        await knowledge.aclose()
    assert reply.text.startswith("Wipe leather boots")
    assert reply.sources[0].url == "https://acme.example/care#caring-for-leather-boots"
    assert 0 < reply.confidence <= 1


async def test_a_question_is_classified_once_while_the_same_engine_serves():
    knowledge = KnowledgeService(make_settings())
    await knowledge.start()
    try:
        asked: list[tuple[str, int]] = []

        def counting(engine):
            match = engine.match

            def counted(text, k):
                asked.append((text, k))
                return match(text, k)

            engine.match = counted

        counting(knowledge.engine)
        first, again = await asyncio.gather(
            knowledge.match("where is my parcel"), knowledge.match("where is my parcel")
        )
        assert first is again and await knowledge.match("where is my parcel") is first
        await knowledge.match("where is my parcel", 5)  # another k: another computation
        assert len(asked) == 2
        await knowledge.replace(knowledge.kb)  # a new engine answers afresh
        await knowledge.wait_idle()
        counting(knowledge.engine)
        assert (await knowledge.match("where is my parcel")).entry.id == first.entry.id
        assert len(asked) == 3
    finally:
        await knowledge.aclose()


async def test_the_best_entry_answers_once_its_confidence_reaches_a_threshold_below_one_half():
    knowledge = KnowledgeService(make_settings())
    await knowledge.start()
    try:
        match = await knowledge.match("where is it")
        # the out-of-scope class is likelier, the best entry still has a real chance
        assert match.entry is None and match.best is not None and 0.05 < match.confidence < 0.5
        at = await LocalResponder(knowledge, match.confidence).respond(Prompt("where is it"))
        above = LocalResponder(knowledge, match.confidence + 0.01)
        refused = await above.respond(Prompt("where is it"))
        default = await LocalResponder(knowledge).respond(Prompt("where is it"))
    finally:
        await knowledge.aclose()
    assert at.text == match.best.answer and at.sources[0].id == match.best.id
    assert at.confidence == pytest.approx(match.confidence)
    # below the threshold: the refusal, whose low confidence escalates
    assert refused.text == default.text == OUT_OF_SCOPE
    assert refused.confidence == default.confidence == pytest.approx(match.confidence)
