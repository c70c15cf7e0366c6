"""The chain's side jobs (services/responders/tasks.py) against the fake OpenAI and Gemini
servers: their own schema and prompt on the wire, failover as for answers, and nothing to
do for the in-process responder."""

from __future__ import annotations

from typing import Any

import pytest

from services.assist.summary import SUMMARY_PROMPT, SUMMARY_SCHEMA
from services.responders.chain import AllRespondersFailed
from services.responders.factory import build_responders
from services.responders.tasks import Task

TASK = Task(
    name="handoff_summary",
    system=SUMMARY_PROMPT,
    user="<transcript>\n<customer_message>\nwhere is ORD-1?\n</customer_message>\n</transcript>",
    schema=SUMMARY_SCHEMA,
    timeout=5.0,
)
DONE = {
    "request": "Where ORD-1 is.",
    "tried": "Nothing.",
    "mood": "neutral",
    "identifiers": ["ORD-1"],
}


async def test_a_failing_provider_hands_the_job_to_the_next(
    llm_settings: Any, local: Any, openai_fake: Any, gemini_fake: Any
):
    openai_fake.fake.set(mode="status", status=503)
    gemini_fake.fake.tasks["handoff_summary"] = DONE
    chain = build_responders(llm_settings(provider_max_retries=0), local)
    try:
        result = await chain.complete(TASK)
    finally:
        await chain.aclose()
    assert result.provider == "gemini" and result.data == DONE
    assert result.usage is not None and result.usage.completion_tokens == 17
    sent = openai_fake.fake.requests[-1]["body"]
    assert sent["response_format"]["json_schema"]["name"] == "handoff_summary"
    assert sent["messages"] == [
        {"role": "system", "content": SUMMARY_PROMPT},
        {"role": "user", "content": TASK.user},
    ]
    body = gemini_fake.fake.requests[-1]["body"]
    assert body["generationConfig"]["responseJsonSchema"]["title"] == "handoff_summary"
    assert "where is ORD-1?" in str(body["contents"])
    status = chain.status()
    assert status["openai"]["failures"] == 1 and status["gemini"]["successes"] == 1


async def test_the_in_process_responder_does_no_side_jobs(llm_settings: Any, local: Any):
    chain = build_responders(llm_settings(openai_api_key=None, gemini_api_key=None), local)
    try:
        with pytest.raises(AllRespondersFailed):
            await chain.complete(TASK)
    finally:
        await chain.aclose()
