"""Fixtures for provider tests: fake OpenAI/Gemini servers on free ports, a real local
responder over the demo knowledge base, and settings pointing the official SDKs at them."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from services.config import Settings
from services.knowledge.service import KnowledgeService
from services.responders.base import Prompt, Source
from services.responders.local import LocalResponder
from tests.fakes.llm import RunningFake, free_port, serve_fake


@pytest.fixture(scope="session")
async def _openai_server() -> AsyncIterator[RunningFake]:
    running = await serve_fake()
    yield running
    await running.stop()


@pytest.fixture(scope="session")
async def _gemini_server() -> AsyncIterator[RunningFake]:
    running = await serve_fake()
    yield running
    await running.stop()


@pytest.fixture
def openai_fake(_openai_server: RunningFake) -> Iterator[RunningFake]:
    """A fake OpenAI server, healthy and with no requests at the start of each test."""
    _openai_server.fake.reset()
    yield _openai_server
    _openai_server.fake.reset()


@pytest.fixture
def gemini_fake(_gemini_server: RunningFake) -> Iterator[RunningFake]:
    """A fake Gemini server, healthy and with no requests at the start of each test."""
    _gemini_server.fake.reset()
    yield _gemini_server
    _gemini_server.fake.reset()


@pytest.fixture(scope="session")
async def local() -> AsyncIterator[LocalResponder]:
    """The embedded responder over the demo knowledge base (no Redis)."""
    knowledge = KnowledgeService(Settings(_env_file=None))
    await knowledge.start()
    yield LocalResponder(knowledge)
    await knowledge.aclose()


@pytest.fixture
def llm_settings(openai_fake, gemini_fake):
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "openai_api_key": "sk-test",
            "openai_base_url": openai_fake.openai_url,
            "gemini_api_key": "g-test",
            "gemini_base_url": gemini_fake.gemini_url,
            "provider_timeout": 1.0,
            "provider_first_token_timeout": 0.5,
            "message_deadline": 6.0,
            "provider_max_retries": 1,
            "breaker_failure_threshold": 2,
            "breaker_cooldown": 0.5,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


PROMPT = Prompt(
    message="How long does shipping take?",
    context=(
        Source(
            "shipping_time",
            "Shipping times",
            0.93,
            "https://acme.example/help/shipping/times",
            "Standard shipping takes 3-5 business days.",
        ),
    ),
)
