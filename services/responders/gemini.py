"""Google Gemini through Google's supported SDK, google-genai (async client).

Structured output via `response_json_schema`; the SDK's own retries are off (the
chain retries); each failure becomes a ResponderError that says whether trying again
may help.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from google import genai
from google.genai import errors, types

from services.config import Settings
from services.responders.base import Delta, Prompt, Reply, Reset, Responder, ResponderError, Usage
from services.responders.prompting import (
    REPLY_SCHEMA,
    AnswerStream,
    parse_reply,
    system_prompt,
    user_turn,
)


def as_responder_error(exc: Exception) -> ResponderError:
    name = GeminiResponder.name
    if isinstance(exc, errors.APIError):
        code = exc.code or 0
        if code == 429:
            header = exc.response.headers.get("retry-after") if getattr(exc, "response", None) is not None else None
            try:
                after = float(header) if header else None
            except ValueError:
                after = None
            return ResponderError(name, "rate limited (429)", retry_after=after)
        if code in (401, 403):
            return ResponderError(name, f"not authorised ({code})", retryable=False, misconfigured=True)
        if code in (400, 404):
            return ResponderError(name, f"request refused ({code})", retryable=False, misconfigured=True)
        return ResponderError(name, f"server error ({code})")
    kind = type(exc).__name__
    if "Timeout" in kind:
        return ResponderError(name, "timeout")
    if "Connect" in kind or "Protocol" in kind or "Network" in kind or isinstance(exc, OSError):
        return ResponderError(name, "connection error", detail=kind)
    if isinstance(exc, ValueError):
        return ResponderError(name, "malformed response", retryable=False, detail=kind)
    return ResponderError(name, "unexpected error", detail=kind)


def usage_of(response: types.GenerateContentResponse) -> Usage | None:
    meta = response.usage_metadata
    if meta is None:
        return None
    return Usage(meta.prompt_token_count or 0, meta.candidates_token_count or 0)


class GeminiResponder(Responder):
    name = "gemini"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model = settings.gemini_model
        options = types.HttpOptions(
            base_url=settings.gemini_base_url, api_version="v1beta",
            timeout=int(settings.provider_timeout * 1000),
        )
        self.client = genai.Client(
            api_key=settings.gemini_api_key.get_secret_value() if settings.gemini_api_key else None,
            http_options=options,
        )

    def _request(self, prompt: Prompt) -> dict:
        contents = [
            types.Content(role="model" if turn.role == "assistant" else "user", parts=[types.Part(text=turn.content)])
            for turn in prompt.history
        ]
        contents.append(types.Content(role="user", parts=[types.Part(text=user_turn(prompt))]))
        config = types.GenerateContentConfig(
            system_instruction=system_prompt(self.settings),
            response_mime_type="application/json",
            response_json_schema=REPLY_SCHEMA,
        )
        return {"model": self.model, "contents": contents, "config": config}

    async def respond(self, prompt: Prompt) -> Reply:
        try:
            response = await self.client.aio.models.generate_content(**self._request(prompt))
            text = response.text or ""
        except Exception as exc:  # the SDK raises its own errors and its HTTP client's
            raise as_responder_error(exc) from exc
        return parse_reply(text, self.name, prompt, usage_of(response))

    async def stream(self, prompt: Prompt) -> AsyncIterator[Delta | Reset | Reply]:
        answer = AnswerStream()
        usage = None
        try:
            async for chunk in await self.client.aio.models.generate_content_stream(**self._request(prompt)):
                usage = usage_of(chunk) or usage
                if text := chunk.text:
                    if delta := answer.feed(text):
                        yield Delta(delta)
        except Exception as exc:  # the SDK raises its own errors and its HTTP client's
            raise as_responder_error(exc) from exc
        yield parse_reply(answer.buffer, self.name, prompt, usage)

    async def aclose(self) -> None:
        await self.client.aio.aclose()
