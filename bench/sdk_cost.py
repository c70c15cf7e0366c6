"""CPU the provider SDKs spend on one streamed reply in our process: the fake model
(bench/fake_model.py, its own process) answers at once, so what is timed here is building
the request, the HTTP exchange and reading the stream. Compares the OpenAI responder
(the SDK's low-level `post`, chunks as JSON) with `chat.completions.create` (the SDK's typed
path: request transform, a pydantic model per chunk) on the same request, and the Gemini
responder (google-genai). The prompt is a support exchange with ten turns of history and
three knowledge-base passages, as a grounded message sends.

    python -m bench.sdk_cost [--replies 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from openai import AsyncOpenAI

from bench.model_overhead import start_model
from bench.rest_load import free_port
from services.config import Settings
from services.responders.base import Prompt, Source, Turn
from services.responders.gemini import GeminiResponder
from services.responders.openai import OpenAIResponder

PROMPT = Prompt(
    message="Where is my order? I ordered a sweater ten days ago.",
    history=tuple(
        Turn("user" if i % 2 == 0 else "assistant", f"message {i} about the order and its delivery")
        for i in range(10)
    ),
    context=tuple(
        Source(f"entry{i}", f"Entry {i}", 0.8, None, "An answer from the help centre. " * 8)
        for i in range(3)
    ),
    session_id="bench",
)


async def timed(one: Callable[[], Awaitable[object]], replies: int) -> dict[str, float]:
    for _ in range(10):  # warm-up: connections, caches
        await one()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(replies):
        await one()
    return {
        "cpu_ms_per_reply": round((time.process_time() - cpu) / replies * 1000, 2),
        "wall_ms_per_reply": round((time.perf_counter() - wall) / replies * 1000, 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replies", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    model = start_model(port, 0.0)
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        _env_file=None,
        openai_api_key="sk-bench",
        openai_base_url=url + "/v1",
        gemini_api_key="bench",
        gemini_base_url=url,
    )
    ours, gemini = OpenAIResponder(settings), GeminiResponder(settings)
    typed = AsyncOpenAI(api_key="sk-bench", base_url=url + "/v1", max_retries=0)

    async def stream(responder: OpenAIResponder | GeminiResponder) -> None:
        async for _ in responder.stream(PROMPT):
            pass

    async def sdk_create() -> None:
        request = ours._request(PROMPT)
        chunks = await typed.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        async with chunks:
            async for _ in chunks:
                pass

    try:
        for _ in range(100):  # until the fake answers
            try:
                await stream(ours)
                break
            except Exception:
                await asyncio.sleep(0.1)
        result = {
            "openai_responder": await timed(lambda: stream(ours), args.replies),
            "openai_sdk_create": await timed(sdk_create, args.replies),
            "gemini_responder": await timed(lambda: stream(gemini), args.replies),
            "replies": args.replies,
        }
    finally:
        await ours.aclose()
        await gemini.aclose()
        await typed.close()
        model.terminate()
        model.wait(30)
    print(json.dumps({"sdk_cost": result}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
