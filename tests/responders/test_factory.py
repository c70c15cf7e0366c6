"""build_responders: configured providers in AI_PROVIDER_ORDER, the embedded one last."""

import pytest

from services.config import Settings
from services.responders.factory import build_responders
from tests.responders.scripted import Scripted

KEYS = {"openai": {"openai_api_key": "sk-test"}, "gemini": {"gemini_api_key": "g-test"}}


def settings(order: str, *configured: str, **extra) -> Settings:
    values = {"ai_provider_order": order, **extra}
    for name in configured:
        values.update(KEYS[name])
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    ("order", "configured", "expected"),
    [
        ("openai,gemini,local", ("openai",), ["openai", "local"]),  # the brief's "OpenAI only"
        ("openai,gemini,local", ("gemini",), ["gemini", "local"]),  # "Gemini only"
        ("openai,gemini,local", ("openai", "gemini"), ["openai", "gemini", "local"]),  # both
        ("gemini,openai,local", ("openai", "gemini"), ["gemini", "openai", "local"]),
        ("openai,gemini,local", (), ["local"]),  # none: the embedded responder serves
        ("openai,gemini", (), ["local"]),
        (
            "openai,gemini",
            ("openai", "gemini"),
            ["openai", "gemini"],
        ),  # no local: all down is an error
        ("local,openai", ("openai",), ["openai", "local"]),  # local always answers: it goes last
        ("local", ("openai", "gemini"), ["local"]),
    ],
)
async def test_the_chain_keeps_configured_providers_in_order(order, configured, expected):
    local = Scripted("local", in_process=True)
    chain = build_responders(settings(order, *configured), local)
    assert chain.names == expected
    if expected[-1] == "local":
        assert chain.links[-1].responder is local
    status = chain.status()
    left_out = [n for n in order.split(",") if n != "local" and n not in configured]
    assert list(status) == expected + left_out
    assert all(
        status[n]["configured"] is False and status[n]["state"] == "not_configured"
        for n in left_out
    )
    assert all(status[n]["configured"] is True for n in expected)
    await chain.aclose()


async def test_an_openai_compatible_server_needs_only_a_base_url():
    chain = build_responders(
        settings("openai,local", openai_base_url="http://127.0.0.1:11434/v1"), Scripted("local")
    )
    assert chain.names == ["openai", "local"]
    await chain.aclose()


async def test_the_policy_and_models_come_from_settings():
    chain = build_responders(
        settings(
            "openai,gemini,local",
            "openai",
            "gemini",
            openai_model="gpt-4o-mini",
            gemini_model="gemini-2.0-flash",
            provider_timeout=7,
            provider_first_token_timeout=3,
            message_deadline=20,
            provider_max_retries=4,
            breaker_failure_threshold=5,
            breaker_cooldown=12,
        ),
        Scripted("local"),
    )
    p = chain.policy
    assert (p.attempt_timeout, p.first_token_timeout, p.deadline, p.max_retries) == (7, 3, 20, 4)
    assert (p.breaker_threshold, p.breaker_cooldown) == (5, 12)
    status = chain.status()
    assert (
        status["openai"]["model"] == "gpt-4o-mini"
        and status["gemini"]["model"] == "gemini-2.0-flash"
    )
    assert {s["state"] for s in status.values()} == {"closed"}
    await chain.aclose()
