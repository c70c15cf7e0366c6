"""KnowledgeService on a real Redis (database 9, a key prefix per test, deleted after):
versions stored and announced, every instance swapping, no request failing mid-swap."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from services.errors import EntryNotFound, InvalidKnowledge, KnowledgeConflict
from services.knowledge.model import Entry, KnowledgeBase
from services.knowledge.service import KnowledgeService, kb_version
from tests.conftest import delete_prefix, make_settings, unique_prefix

LOYALTY = Entry(
    "loyalty",
    "intent",
    "Loyalty",
    "Acme Rewards gives one point per dollar.",
    ("Do you have a loyalty programme?", "how do reward points work", "rewards club"),
)
HOURS = Entry(
    "hours",
    "intent",
    "Hours",
    "We are open 9 to 5.",
    ("When are you open?", "opening hours", "are you open on sunday"),
)
NEW_KB = KnowledgeBase((LOYALTY, HOURS), name="new")

Factory = Callable[..., Awaitable[KnowledgeService]]


@pytest.fixture
async def services(redis) -> AsyncIterator[Factory]:
    """Started services sharing one fresh key prefix; closed and their keys deleted after."""
    prefix = unique_prefix("kb")
    started: list[KnowledgeService] = []

    async def factory(**overrides) -> KnowledgeService:
        service = KnowledgeService(
            make_settings(redis_key_prefix=prefix, **overrides), redis=redis, key_prefix=prefix
        )
        await service.start()
        started.append(service)
        return service

    yield factory
    for service in started:
        await service.aclose()
    await delete_prefix(redis, prefix)


async def serving(service: KnowledgeService, version: str, seconds: float = 20) -> None:
    """Wait until `service` serves `version` (pub/sub, or the poll behind it)."""
    for _ in range(int(seconds / 0.05)):
        if service.version == version:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still serving {service.version}, not {version}")


async def test_start_serves_the_configured_file_and_reports_stats(services):
    service = await services()
    stats = service.stats()
    assert stats["engine"] == "classical" and stats["version"] == service.version
    assert (
        stats["entries"] >= 25 and stats["intents"] == stats["entries"] and stats["passages"] == 0
    )
    assert stats["trainedAt"] and stats["trainSeconds"] >= 0
    match = await service.match("how long does shipping take", k=2)
    assert match.entry.id == "shipping_time" and len(match.hits) == 2


async def test_a_replaced_version_is_stored_announced_and_served_by_every_instance(services, redis):
    first, second = await services(), await services()
    old = first.version
    status = await first.replace(NEW_KB)
    assert status["pending"] == kb_version(NEW_KB) and status["version"] == old
    await first.wait_idle()
    assert first.version == kb_version(NEW_KB)
    await serving(second, first.version)
    assert (await second.match("how do reward points work?")).entry.id == "loyalty"
    assert (await redis.get(first.current_key)).decode() == first.version
    assert await redis.get(first.version_key(old)) is None  # the file's version was never stored
    third = await services()  # started later: serves the stored version, not its file
    assert third.version == first.version and third.stats()["entries"] == 2


async def test_answers_keep_coming_during_a_swap(services):
    service = await services()
    questions = ["opening hours?", "where is my order", "how do reward points work", "hello"]
    valid = {e.id for e in service.kb.entries} | {e.id for e in NEW_KB.entries}

    async def ask(i: int):
        await asyncio.sleep(0.002 * (i % 50))
        return await service.match(questions[i % len(questions)])

    load = [asyncio.create_task(ask(i)) for i in range(200)]
    await service.replace(NEW_KB)
    load += [asyncio.create_task(ask(i)) for i in range(200, 400)]
    results = await asyncio.gather(*load)
    await service.wait_idle()
    assert all(m.entry is None or m.entry.id in valid for m in results)
    assert service.version == kb_version(NEW_KB)
    assert (await service.match("opening hours?")).entry.id == "hours"


async def test_a_bad_base_is_refused_at_once_and_nothing_changes(services, redis):
    service = await services()
    before = service.version
    with pytest.raises(InvalidKnowledge):
        await service.replace(KnowledgeBase((LOYALTY,)))
    assert service.version == before and service.status()["pending"] is None
    assert await redis.get(service.current_key) is None  # nothing was stored


async def test_a_base_that_fails_to_train_keeps_the_old_version_serving(services, redis):
    service = await services()
    before = service.version
    untrainable = KnowledgeBase(
        (
            Entry("a", "intent", "A", "a", ("?",)),  # no words to learn from
            Entry("b", "intent", "B", "", ("!",), tags=("out_of_scope",)),
        )
    )
    await service.replace(untrainable)
    await service.wait_idle()
    status = service.status()
    assert (
        status["version"] == before
        and status["pending"] is None
        and "training failed" in status["lastError"]
    )
    assert await redis.get(service.current_key) is None
    assert (await service.match("where is my order")).entry.id == "order_status"


async def test_the_newest_of_two_quick_changes_wins(services, redis):
    first, second = await services(), await services()
    older = KnowledgeBase((*NEW_KB.entries, Entry("x", "intent", "X", "x", ("xylophone lessons",))))
    await first.replace(older)
    await first.replace(NEW_KB)
    await first.wait_idle()
    assert first.version == kb_version(NEW_KB)
    assert (await redis.get(first.current_key)).decode() == kb_version(NEW_KB)
    await serving(second, kb_version(NEW_KB))


async def test_add_search_and_delete_one_entry(services, redis):
    first, second = await services(), await services()
    await first.replace(NEW_KB)
    # a change made while the upload still trains applies to the upload, not the old base
    await first.add_entry(
        {
            "name": "parking",
            "questions": ["is there parking", "where do I park"],
            "answer": "Free parking behind the store.",
            "url": "https://acme.example/parking",
        }
    )
    await first.wait_idle()
    assert {e.id for e in first.kb.entries} == {"loyalty", "hours", "parking"}
    found = await first.search("where can I park my car", 3)
    assert (
        found["match"]["id"] == "parking"
        and found["match"]["url"] == "https://acme.example/parking"
    )
    assert found["outOfScope"] is False and found["version"] == first.version
    scores = [hit["score"] for hit in found["hits"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    with_parking = first.version
    await first.delete_entry("parking")
    await first.wait_idle()
    assert (
        0 < await redis.ttl(first.version_key(with_parking)) <= 3600
    )  # a replaced version expires
    assert await redis.ttl(first.version_key(first.version)) == -1  # the serving one stays
    await serving(second, first.version)
    assert second.kb.get("parking") is None
    with pytest.raises(EntryNotFound):
        await first.delete_entry("parking")
    with pytest.raises(KnowledgeConflict):  # one entry left could not serve
        await first.delete_entry("hours")


async def test_passages_and_out_of_scope_in_search(services, tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "intents.yaml").write_text(
        "intents:\n"
        "  - name: hours\n    questions: ['When are you open?', opening hours]\n    answer: 9 to 5.\n"
        "  - name: loyalty\n    questions: [reward points, loyalty programme]\n    answer: One point per dollar.\n"
        "  - name: other\n    out_of_scope: true\n    questions: [who won the match, tell me a joke, weather today]\n"
    )
    (folder / "care.md").write_text(
        "url: https://acme.example/care\n# Caring for leather\n"
        "Wipe leather boots with a damp cloth and use a wax conditioner monthly.\n"
    )
    service = await services(knowledge_base_path=folder)
    assert service.stats()["passages"] == 1
    found = await service.search("how should I clean leather boots", 3)
    passage = next(hit for hit in found["hits"] if hit["kind"] == "passage")
    assert passage["url"] == "https://acme.example/care#caring-for-leather" and passage["score"] > 0
    refused = await service.search("tell me a joke about the weather")
    assert refused["outOfScope"] is True and "match" not in refused


async def test_concurrent_one_entry_changes_all_land(services):
    service = await services()
    questions = {
        "parking": "is there parking",
        "wifi": "do you have wifi",
        "toilets": "where are the toilets",
    }
    await asyncio.gather(
        *(
            service.add_entry({"name": name, "questions": [q, f"{q} please"], "answer": name})
            for name, q in questions.items()
        )
    )
    await service.wait_idle()
    assert set(questions) <= {e.id for e in service.kb.entries}
