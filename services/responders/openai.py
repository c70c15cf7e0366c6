"""OpenAI (or any OpenAI-compatible server) through the official SDK's Chat Completions.

Retries are the chain's job, so the SDK's own are off; each failure becomes a
ResponderError that says whether trying again may help.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
from openai import AsyncOpenAI

from services.config import Settings
from services.responders.base import Delta, Prompt, Reply, Reset, Responder, ResponderError, Usage
from services.responders.prompting import REPLY_SCHEMA, AnswerStream, openai_messages, parse_reply

RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "support_reply", "strict": True, "schema": REPLY_SCHEMA},
}


def retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def as_responder_error(exc: Exception) -> ResponderError:
    name = OpenAIResponder.name
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return ResponderError(name, "timeout")
    if isinstance(exc, httpx.HTTPError):
        return ResponderError(name, "connection error", detail=type(exc).__name__)
    if isinstance(exc, openai.APIConnectionError):
        return ResponderError(name, "connection error", detail=type(exc.__cause__ or exc).__name__)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429:
            return ResponderError(name, "rate limited (429)", retry_after=retry_after(exc))
        if status in (401, 403):
            return ResponderError(name, f"not authorised ({status})", retryable=False, misconfigured=True)
        if status in (400, 404, 422):
            return ResponderError(name, f"request refused ({status})", retryable=False, misconfigured=True)
        return ResponderError(name, f"server error ({status})", retry_after=retry_after(exc))
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return ResponderError(name, "malformed response", retryable=False, detail=type(exc).__name__)
    return ResponderError(name, "unexpected error", detail=type(exc).__name__)


class OpenAIResponder(Responder):
    name = "openai"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model = settings.openai_model
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
        self.client = AsyncOpenAI(
            api_key=key, base_url=settings.openai_base_url, max_retries=0,
            timeout=settings.provider_timeout,
        )

    def _request(self, prompt: Prompt) -> dict:
        return {"model": self.model, "messages": openai_messages(prompt, self.settings),
                "response_format": RESPONSE_FORMAT}

    async def respond(self, prompt: Prompt) -> Reply:
        try:
            completion = await self.client.chat.completions.create(**self._request(prompt))
            text = completion.choices[0].message.content or ""
        except (openai.OpenAIError, httpx.HTTPError, ValueError, IndexError, AttributeError) as exc:
            raise as_responder_error(exc) from exc
        usage = completion.usage
        return parse_reply(text, self.name, prompt, Usage(usage.prompt_tokens, usage.completion_tokens) if usage else None)

    async def stream(self, prompt: Prompt) -> AsyncIterator[Delta | Reset | Reply]:
        answer = AnswerStream()
        usage = None
        try:
            stream = await self.client.chat.completions.create(
                **self._request(prompt), stream=True, stream_options={"include_usage": True}
            )
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    if chunk.choices and chunk.choices[0].delta.content:
                        if delta := answer.feed(chunk.choices[0].delta.content):
                            yield Delta(delta)
        except (openai.OpenAIError, httpx.HTTPError, ValueError, AttributeError) as exc:
            raise as_responder_error(exc) from exc
        yield parse_reply(answer.buffer, self.name, prompt, usage)

    async def aclose(self) -> None:
        await self.client.close()
