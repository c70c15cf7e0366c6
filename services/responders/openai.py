"""OpenAI (or any OpenAI-compatible server: Ollama, vLLM, LM Studio, llama.cpp) through
the official SDK's Chat Completions, with structured output (`json_schema`).

Retries are the chain's job, so the SDK's own are off; each failure becomes a
ResponderError that says whether trying again may help and whether the provider's
settings are at fault.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI, AsyncStream

from services.config import Settings
from services.responders.base import Delta, Prompt, Reply, Responder, ResponderError, Usage
from services.responders.chain import TIMEOUT, parse_retry_after
from services.responders.prompting import REPLY_SCHEMA, AnswerStream, openai_messages, parse_reply
from services.responders.tasks import Task, TaskResult, parse_task

NAME = "openai"
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "support_reply", "strict": True, "schema": REPLY_SCHEMA},
}
#: 400s about this one request, not about the provider's settings
REQUEST_SPECIFIC = {
    "context_length_exceeded",
    "string_above_max_length",
    "content_policy_violation",
    "content_filter",
    "invalid_prompt",
}


def _error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        inner = error if isinstance(error, dict) else body
        code = inner.get("code") or inner.get("type")
        return str(code) if code else None
    return None


def as_responder_error(exc: BaseException) -> ResponderError:
    """One SDK (or transport) exception as a typed failure for the chain."""
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return ResponderError(NAME, TIMEOUT)
    if isinstance(exc, openai.APIConnectionError):
        return ResponderError(NAME, "connection error", detail=type(exc.__cause__ or exc).__name__)
    if isinstance(exc, httpx.TransportError):
        return ResponderError(NAME, "connection error", detail=type(exc).__name__)
    if isinstance(exc, openai.APIStatusError):
        status, code = exc.status_code, _error_code(exc)
        after = parse_retry_after(exc.response.headers)
        if status == 429 and code == "insufficient_quota":
            return ResponderError(
                NAME, "quota exhausted (429)", retryable=False, misconfigured=True
            )
        if status == 429:
            return ResponderError(NAME, "rate limited (429)", retry_after=after)
        if status in (401, 403):
            return ResponderError(
                NAME,
                f"not authorised ({status})",
                retryable=False,
                misconfigured=True,
                detail=code or "",
            )
        if status == 404:
            return ResponderError(
                NAME,
                "model not found (404)",
                retryable=False,
                misconfigured=True,
                detail=code or "",
            )
        if status in (408, 409) or status >= 500:
            return ResponderError(NAME, f"server error ({status})", retry_after=after)
        # 400/422: the request was refused; unless it is about this one message (too long,
        # filtered) every request will be (model without structured output, bad parameter)
        return ResponderError(
            NAME,
            f"request refused ({status})",
            retryable=False,
            misconfigured=code not in REQUEST_SPECIFIC,
            detail=code or "",
        )
    if isinstance(
        exc, openai.APIResponseValidationError | ValueError | LookupError | AttributeError
    ):
        return ResponderError(
            NAME, "malformed response", retryable=False, detail=type(exc).__name__
        )
    return ResponderError(NAME, "unexpected error", retryable=False, detail=type(exc).__name__)


class OpenAIResponder(Responder):
    name = NAME

    def __init__(self, settings: Settings, *, client: AsyncOpenAI | None = None) -> None:
        self.settings = settings
        self.model = settings.openai_model
        # a local OpenAI-compatible server needs only OPENAI_BASE_URL; the SDK wants some key
        key = (
            settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
        )
        self.client = client or AsyncOpenAI(
            api_key=key,
            base_url=settings.openai_base_url,
            max_retries=0,
            timeout=openai.Timeout(  # the SDK's own HTTP client's type (httpx2 in openai 3)
                settings.provider_timeout, connect=min(5.0, settings.provider_timeout)
            ),
        )

    def _request(self, prompt: Prompt) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": openai_messages(prompt, self.settings),
            "response_format": RESPONSE_FORMAT,
            "max_tokens": self.settings.llm_max_output_tokens,
        }

    async def _create(self, request: dict[str, Any]) -> tuple[str, Usage | None]:
        """One non-streamed completion: its text and token usage, errors typed."""
        try:
            completion = await self.client.chat.completions.create(**request)
            message = completion.choices[0].message
        except ResponderError:
            raise
        except Exception as exc:  # the SDK's errors and its HTTP client's: typed below
            raise as_responder_error(exc) from exc
        if message.refusal:
            raise ResponderError(NAME, "model refused", retryable=False)
        usage = completion.usage
        return message.content or "", (
            Usage(usage.prompt_tokens, usage.completion_tokens) if usage else None
        )

    async def respond(self, prompt: Prompt) -> Reply:
        text, usage = await self._create(self._request(prompt))
        return parse_reply(text, NAME, prompt, usage)

    async def complete(self, task: Task) -> TaskResult:
        text, usage = await self._create(
            {
                "model": self.model,
                "messages": [
                    {"role": "system", "content": task.system},
                    {"role": "user", "content": task.user},
                ],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": task.name, "strict": True, "schema": task.schema},
                },
                "max_tokens": self.settings.llm_max_output_tokens,
            }
        )
        return parse_task(text, NAME, task, usage)

    async def stream(self, prompt: Prompt) -> AsyncGenerator[Delta | Reply, None]:
        """The reply as it streams. Through the SDK's documented low-level `post` (its auth,
        timeouts, status errors and SSE decoder) with the request body as we built it and
        each chunk as its JSON: `chat.completions.create` re-walks the whole request through
        its TypedDict transform and builds pydantic models for every chunk, which measured
        6.4-7.0 ms of CPU per streamed reply against 1.7-2.0 ms this way
        (`python -m bench.sdk_cost`)."""
        answer = AnswerStream()
        usage: Usage | None = None
        body = {**self._request(prompt), "stream": True, "stream_options": {"include_usage": True}}
        try:
            stream = await self.client.post(
                "/chat/completions",
                body=body,
                cast_to=object,
                stream=True,
                stream_cls=AsyncStream[object],
            )
            async with stream:
                async for chunk in stream:
                    if not isinstance(chunk, dict):
                        raise ValueError("a stream chunk that is not a JSON object")
                    if isinstance(counts := chunk.get("usage"), dict):
                        usage = Usage(
                            int(counts.get("prompt_tokens") or 0),
                            int(counts.get("completion_tokens") or 0),
                        )
                    if not (choices := chunk.get("choices")):
                        continue
                    delta = choices[0].get("delta") or {}
                    if delta.get("refusal"):
                        raise ResponderError(NAME, "model refused", retryable=False)
                    content = delta.get("content")
                    if isinstance(content, str) and content and (text := answer.feed(content)):
                        yield Delta(text)
        except ResponderError:
            raise
        except Exception as exc:  # the SDK's errors and its HTTP client's: typed above
            raise as_responder_error(exc) from exc
        yield parse_reply(answer.buffer, NAME, prompt, usage)

    async def aclose(self) -> None:
        await self.client.close()
