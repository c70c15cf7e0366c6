"""`make bench` (providers part): time to an answer through the failover chain when the
primary (OpenAI, through the official SDK) is healthy, returns 500, hangs, or refuses
connections, with its breaker closed and open. Both fake servers answer after a fixed
latency; the fallback is Gemini (through google-genai). REST (`respond`, a whole reply)
and sockets (`stream`, to the final reply) are timed alike.

Targets: breaker open -> the fallback answers within 5 ms of its own latency;
hanging primary -> within the configured attempt timeout + 50 ms (+ the fallback's latency).

    .venv/bin/python -m bench.providers [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from typing import Any

from services.config import Settings
from services.responders.base import Prompt, Reply, Source
from services.responders.chain import ResponderChain
from services.responders.factory import build_responders
from tests.fakes.llm import RunningFake, free_port, serve_fake

LATENCY = 0.05  # seconds, both fakes
TIMEOUT = 0.5  # seconds, the configured attempt (and first-token) timeout
PROMPT = Prompt(
    "How long does shipping take?",
    context=(Source("shipping_time", "Shipping", 0.9, None, "3-5 business days."),),
)


def settings(primary_url: str, fallback_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_api_key": "sk-bench",
        "openai_base_url": primary_url,
        "gemini_api_key": "g-bench",
        "gemini_base_url": fallback_url,
        "ai_provider_order": "openai,gemini",
        "provider_timeout": TIMEOUT,
        "provider_first_token_timeout": TIMEOUT,
        "message_deadline": 10,
        "provider_max_retries": 2,
        "breaker_failure_threshold": 10_000,
        "breaker_cooldown": 3600,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def once(chain: ResponderChain, streaming: bool) -> tuple[float, str]:
    started = time.perf_counter()
    if streaming:
        reply = [event async for event in chain.stream(PROMPT)][-1]
        assert isinstance(reply, Reply)
    else:
        reply = await chain.respond(PROMPT)
    return (time.perf_counter() - started) * 1000, reply.provider


async def measure(chain: ResponderChain, runs: int, streaming: bool) -> dict[str, Any]:
    await once(chain, streaming)  # warm the connection pools
    times, providers = [], set()
    for _ in range(runs):
        elapsed, provider = await once(chain, streaming)
        times.append(elapsed)
        providers.add(provider)
    times.sort()
    return {
        "answered_by": "/".join(sorted(providers)),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[max(0, round(len(times) * 0.95) - 1)], 2),
        "max_ms": round(times[-1], 2),
        "runs": runs,
    }


async def scenario(
    primary: RunningFake,
    fallback: RunningFake,
    runs: int,
    *,
    url: str | None = None,
    open_breaker: bool = False,
    **overrides: Any,
) -> dict[str, dict[str, Any]]:
    out = {}
    for mode, streaming in (("rest", False), ("stream", True)):
        if open_breaker:
            overrides = {**overrides, "breaker_failure_threshold": 1}
        chain = build_responders(
            settings(url or primary.openai_url, fallback.gemini_url, **overrides), None
        )
        if open_breaker:
            await chain.respond(PROMPT)  # one failure opens it
            assert chain.status()["openai"]["state"] == "open"
        out[mode] = await measure(chain, runs, streaming)
        await chain.aclose()
    return out


async def run(runs: int) -> dict[str, Any]:
    primary, fallback = await serve_fake(), await serve_fake()
    fallback.fake.set(latency=LATENCY, answer="The fallback's answer.")
    refused = f"http://127.0.0.1:{free_port()}/v1"
    results: dict[str, Any] = {
        "fake_latency_ms": LATENCY * 1000,
        "attempt_timeout_ms": TIMEOUT * 1000,
    }
    try:
        results["fallback_alone"] = await scenario(
            primary, fallback, runs, ai_provider_order="gemini"
        )
        primary.fake.set(latency=LATENCY)
        results["primary_healthy"] = await scenario(primary, fallback, runs)
        primary.fake.set(mode="status", status=500, latency=LATENCY)
        results["primary_500_no_retry"] = await scenario(
            primary, fallback, runs, provider_max_retries=0
        )
        results["primary_500_two_retries"] = await scenario(primary, fallback, runs)
        results["primary_500_breaker_open"] = await scenario(
            primary, fallback, runs, open_breaker=True
        )
        primary.fake.set(mode="hang")
        results["primary_hangs"] = await scenario(primary, fallback, max(3, runs // 3))
        results["primary_hangs_breaker_open"] = await scenario(
            primary, fallback, runs, open_breaker=True
        )
        results["primary_refuses"] = await scenario(
            primary, fallback, runs, url=refused, provider_max_retries=0
        )
        results["primary_refuses_two_retries"] = await scenario(
            primary, fallback, runs, url=refused
        )
        results["primary_refuses_breaker_open"] = await scenario(
            primary, fallback, runs, url=refused, open_breaker=True
        )
    finally:
        await primary.stop()
        await fallback.stop()
    checks = {}
    for mode in ("rest", "stream"):
        alone = results["fallback_alone"][mode]["p50_ms"]
        worst_open = max(results[k][mode]["p50_ms"] for k in results if k.endswith("breaker_open"))
        hang = results["primary_hangs"][mode]["p50_ms"]
        checks[mode] = {
            "breaker_open_overhead_ms": round(worst_open - alone, 2),
            "breaker_open_target_ms": 5,
            "hanging_overhead_beyond_timeout_ms": round(hang - TIMEOUT * 1000 - alone, 2),
            "hanging_target_ms": 50,
        }
        checks[mode]["met"] = (
            checks[mode]["breaker_open_overhead_ms"] <= 5
            and checks[mode]["hanging_overhead_beyond_timeout_ms"] <= 50
        )
    results["checks"] = checks
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"fake latency {results['fake_latency_ms']:.0f} ms, "
        f"attempt timeout {results['attempt_timeout_ms']:.0f} ms",
        f"{'scenario':32} {'answered by':12} {'REST p50':>9} {'p95':>9} "
        f"{'stream p50':>11} {'p95':>9}",
    ]
    for name, value in results.items():
        if isinstance(value, dict) and "rest" in value and "p50_ms" in value["rest"]:
            r, s = value["rest"], value["stream"]
            lines.append(
                f"{name:32} {r['answered_by']:12} {r['p50_ms']:9.1f} {r['p95_ms']:9.1f} "
                f"{s['p50_ms']:11.1f} {s['p95_ms']:9.1f}"
            )
    for mode, check in results["checks"].items():
        lines.append(
            f"{mode}: breaker open +{check['breaker_open_overhead_ms']} ms over the fallback alone "
            f"(target 5); hanging primary +{check['hanging_overhead_beyond_timeout_ms']} ms beyond "
            f"timeout + fallback (target 50): {'met' if check['met'] else 'NOT MET'}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # failures are the point here; keep the output readable
    results = asyncio.run(run(args.runs))
    print(json.dumps(results, indent=2) if args.json else table(results))


if __name__ == "__main__":
    main()
