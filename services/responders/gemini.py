"""Google Gemini through Google's supported SDK, google-genai (async client).

Structured output through `response_mime_type="application/json"` and
`response_json_schema`. The SDK's own retries stay off (the chain retries). The SDK is
given its HTTP client (httpx) so transport errors are the same wherever it runs (it
would otherwise switch to aiohttp when that happens to be installed). Each failure
becomes a ResponderError that says whether trying again may help.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import httpx
from google import genai
from google.genai import errors, types

from services.config import Settings
from services.responders.base import Delta, Prompt, Reply, Responder, ResponderError, Usage
from services.responders.chain import TIMEOUT, parse_retry_after
from services.responders.prompting import (
    REPLY_SCHEMA,
    AnswerStream,
    history_text,
    parse_reply,
    system_prompt,
    user_turn,
)
from services.responders.tasks import Task, TaskResult, parse_task

NAME = "gemini"
BLOCKED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"}


def _retry_delay(details: Any) -> float | None:
    """`google.rpc.RetryInfo`'s `retryDelay` ("7s", "0.5s") from an error body."""
    error = details.get("error", details) if isinstance(details, dict) else None
    for item in (error or {}).get("details") or ():
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            match = re.fullmatch(r"\s*([\d.]+)s\s*", str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _key_problem(exc: errors.APIError) -> bool:
    """Gemini answers a bad API key with 400 INVALID_ARGUMENT ("API key not valid")."""
    text = f"{exc.message or ''} {exc.details}"
    return "API_KEY_INVALID" in text or "API key" in text


def as_responder_error(exc: BaseException) -> ResponderError:
    """One SDK (or transport) exception as a typed failure for the chain."""
    if isinstance(exc, errors.APIError):
        code, status = exc.code or 0, exc.status or ""
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        after = parse_retry_after(headers) if headers is not None else None
        if after is None:
            after = _retry_delay(exc.details)
        if code == 429:
            return ResponderError(NAME, "rate limited (429)", retry_after=after, detail=status)
        if code in (401, 403) or (code == 400 and _key_problem(exc)):
            return ResponderError(
                NAME, f"not authorised ({code})", retryable=False, misconfigured=True, detail=status
            )
        if code == 404:
            return ResponderError(
                NAME, "model not found (404)", retryable=False, misconfigured=True, detail=status
            )
        if code in (408, 409) or code >= 500:
            return ResponderError(NAME, f"server error ({code})", retry_after=after, detail=status)
        # 400 INVALID_ARGUMENT / FAILED_PRECONDITION: every request will be refused alike
        return ResponderError(
            NAME, f"request refused ({code})", retryable=False, misconfigured=True, detail=status
        )
    if isinstance(exc, httpx.TimeoutException):
        return ResponderError(NAME, TIMEOUT)
    if isinstance(exc, httpx.TransportError | ConnectionError):
        return ResponderError(NAME, "connection error", detail=type(exc).__name__)
    if isinstance(exc, ValueError | LookupError | AttributeError | TypeError):
        return ResponderError(
            NAME, "malformed response", retryable=False, detail=type(exc).__name__
        )
    return ResponderError(NAME, "unexpected error", retryable=False, detail=type(exc).__name__)


def usage_of(response: types.GenerateContentResponse) -> Usage | None:
    meta = response.usage_metadata
    if meta is None:
        return None
    completion = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return Usage(meta.prompt_token_count or 0, completion)


def check_blocked(response: types.GenerateContentResponse) -> None:
    """A prompt or answer stopped by Gemini's filters: not this provider's to answer."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        why = feedback.block_reason
        raise ResponderError(
            NAME, "blocked", retryable=False, detail=str(getattr(why, "value", why))
        )
    for candidate in response.candidates or ():
        reason = candidate.finish_reason
        name = getattr(reason, "value", reason)
        if name in BLOCKED:
            raise ResponderError(NAME, "blocked", retryable=False, detail=str(name))


def _text_of(response: types.GenerateContentResponse) -> str:
    """The candidate's text parts (not `.text`, which warns about non-text parts)."""
    candidates = response.candidates or ()
    if not candidates or candidates[0].content is None:
        return ""
    return "".join(
        part.text for part in candidates[0].content.parts or () if part.text and not part.thought
    )


class GeminiResponder(Responder):
    name = NAME

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model = settings.gemini_model
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.provider_timeout, connect=min(5.0, settings.provider_timeout)
            ),
        )
        options = types.HttpOptions(
            base_url=settings.gemini_base_url,
            api_version="v1beta",
            timeout=int(settings.provider_timeout * 1000),
            httpx_async_client=self.http,
        )
        self.client = genai.Client(
            api_key=settings.gemini_api_key.get_secret_value() if settings.gemini_api_key else None,
            http_options=options,
        )
        self.config = types.GenerateContentConfig(
            system_instruction=system_prompt(settings),
            response_mime_type="application/json",
            response_json_schema=REPLY_SCHEMA,
            max_output_tokens=settings.llm_max_output_tokens,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )

    def _request(self, prompt: Prompt) -> dict[str, Any]:
        """The conversation as the SDK's plain dicts (`types.ContentDict`): given its pydantic
        `types.Content` objects, google-genai spent 9.8-10.2 ms of CPU per streamed reply
        against 7.0-7.5 ms (the same responder both ways, alternating in one process; see
        `python -m bench.sdk_cost` for the whole figure)."""
        contents: list[types.ContentDict] = [
            {
                "role": "model" if turn.role == "assistant" else "user",
                "parts": [{"text": history_text(turn)}],
            }
            for turn in prompt.history
        ]
        contents.append({"role": "user", "parts": [{"text": user_turn(prompt)}]})
        return {"model": self.model, "contents": contents, "config": self.config}

    async def respond(self, prompt: Prompt) -> Reply:
        try:
            response = await self.client.aio.models.generate_content(**self._request(prompt))
            check_blocked(response)
            text = _text_of(response)
        except ResponderError:
            raise
        except Exception as exc:  # the SDK's errors and its HTTP client's: typed above
            raise as_responder_error(exc) from exc
        return parse_reply(text, NAME, prompt, usage_of(response))

    async def complete(self, task: Task) -> TaskResult:
        config = types.GenerateContentConfig(
            system_instruction=task.system,
            response_mime_type="application/json",
            response_json_schema={**task.schema, "title": task.name},
            max_output_tokens=self.settings.llm_max_output_tokens,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        contents = [types.Content(role="user", parts=[types.Part(text=task.user)])]
        try:
            response = await self.client.aio.models.generate_content(
                model=self.model, contents=contents, config=config
            )
            check_blocked(response)
            text = _text_of(response)
        except ResponderError:
            raise
        except Exception as exc:  # the SDK's errors and its HTTP client's: typed above
            raise as_responder_error(exc) from exc
        return parse_task(text, NAME, task, usage_of(response))

    async def stream(self, prompt: Prompt) -> AsyncGenerator[Delta | Reply, None]:
        answer = AnswerStream()
        usage: Usage | None = None
        try:
            chunks = await self.client.aio.models.generate_content_stream(**self._request(prompt))
            # A timeout or a caller leaving closes the HTTP stream now. The SDK types its
            # stream as an iterator; it is an async generator, which has aclose().
            async with aclosing(chunks):  # type: ignore[type-var]
                async for chunk in chunks:
                    usage = usage_of(chunk) or usage
                    check_blocked(chunk)
                    if (text := _text_of(chunk)) and (delta := answer.feed(text)):
                        yield Delta(delta)
        except ResponderError:
            raise
        except Exception as exc:  # the SDK's errors and its HTTP client's: typed above
            raise as_responder_error(exc) from exc
        yield parse_reply(answer.buffer, NAME, prompt, usage)

    async def aclose(self) -> None:
        await self.client.aio.aclose()
        await self.http.aclose()
