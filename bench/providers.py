"""`make bench` (providers part): time to an answer through the failover chain when the
primary (OpenAI protocol) is healthy, returns 500, hangs, or refuses connections, with
its breaker closed and open. Fake servers answer with a fixed latency; the fallback is
Gemini (through google-genai). Prints one JSON object.

Targets: breaker open -> the fallback answers within 5 ms of its own latency;
hanging primary -> within the configured attempt timeout + 50 ms (+ the fallback's latency).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

from services.config import Settings
from services.responders.base import Prompt, Source
from services.responders.factory import build_responders
from tests.fakes.llm import free_port, serve_fake

LATENCY = 0.05  # seconds, both fakes
TIMEOUT = 0.5  # seconds, the configured attempt timeout
RUNS = 15
PROMPT = Prompt("How long does shipping take?", context=(Source("shipping_time", "Shipping", 0.9, None, "3-5 days"),))


def settings(primary_url: str, fallback_url: str, **overrides) -> Settings:
    values = {
        "openai_api_key": "sk-bench", "openai_base_url": primary_url, "gemini_api_key": "g-bench",
        "gemini_base_url": fallback_url, "ai_provider_order": "openai,gemini", "provider_timeout": TIMEOUT,
        "provider_first_token_timeout": TIMEOUT, "message_deadline": 10, "provider_max_retries": 2,
        "breaker_failure_threshold": 3, "breaker_cooldown": 3600,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def time_answers(chain, runs: int = RUNS) -> dict[str, float | str]:
    times, provider = [], None
    for _ in range(runs):
        started = time.perf_counter()
        reply = await chain.respond(PROMPT)
        times.append((time.perf_counter() - started) * 1000)
        provider = reply.provider
    times.sort()
    return {"provider": provider, "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(len(times) * 0.95) - 1], 2), "max_ms": round(times[-1], 2)}


async def main() -> None:
    primary, fallback = await serve_fake(), await serve_fake()
    primary.fake.set(latency=LATENCY)
    fallback.fake.set(latency=LATENCY, answer="Fallback answer.")
    results: dict[str, object] = {"fake_latency_ms": LATENCY * 1000, "attempt_timeout_ms": TIMEOUT * 1000}
    try:
        gemini_only = build_responders(settings(primary.openai_url, fallback.gemini_url, ai_provider_order="gemini"), None)
        results["fallback_alone"] = await time_answers(gemini_only)
        await gemini_only.aclose()
        healthy = build_responders(settings(primary.openai_url, fallback.gemini_url), None)
        results["primary_healthy"] = await time_answers(healthy)
        await healthy.aclose()

        primary.fake.set(mode="status", status=500, latency=LATENCY)
        chain = build_responders(settings(primary.openai_url, fallback.gemini_url, provider_max_retries=0,
                                          breaker_failure_threshold=10_000), None)
        results["primary_500_breaker_closed"] = await time_answers(chain)
        await chain.aclose()

        chain = build_responders(settings(primary.openai_url, fallback.gemini_url, breaker_failure_threshold=1), None)
        await chain.respond(PROMPT)  # opens the breaker
        results["primary_500_breaker_open"] = await time_answers(chain)
        await chain.aclose()

        primary.fake.set(mode="hang")
        chain = build_responders(settings(primary.openai_url, fallback.gemini_url, breaker_failure_threshold=10_000), None)
        results["primary_hangs_breaker_closed"] = await time_answers(chain, runs=5)
        await chain.aclose()

        refused = f"http://127.0.0.1:{free_port()}/v1"
        chain = build_responders(settings(refused, fallback.gemini_url, provider_max_retries=0,
                                          breaker_failure_threshold=10_000), None)
        results["primary_refuses_breaker_closed"] = await time_answers(chain)
        await chain.aclose()
    finally:
        await primary.stop()
        await fallback.stop()

    alone = results["fallback_alone"]["p50_ms"]
    results["checks"] = {
        "breaker_open_overhead_ms": round(results["primary_500_breaker_open"]["p50_ms"] - alone, 2),
        "breaker_open_target_ms": 5,
        "hanging_overhead_beyond_timeout_ms": round(
            results["primary_hangs_breaker_closed"]["p50_ms"] - TIMEOUT * 1000 - alone, 2),
        "hanging_target_ms": 50,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
