"""The fake OpenAI/Gemini server of the tests (tests/fakes/llm.py) in a process of its own,
answering after a fixed latency: `python -m bench.fake_model PORT LATENCY_SECONDS`."""

from __future__ import annotations

import sys

import uvicorn

from tests.fakes.llm import FakeLLM


def main() -> None:
    port, latency = int(sys.argv[1]), float(sys.argv[2])
    fake = FakeLLM().set(latency=latency)
    fake.record = lambda entry: None  # type: ignore[method-assign]  # keep no history
    uvicorn.run(fake.app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
