"""Builds the responder chain from settings: configured providers in AI_PROVIDER_ORDER."""

from __future__ import annotations

import logging

from services.config import Settings
from services.responders.base import Responder
from services.responders.chain import Policy, ResponderChain

log = logging.getLogger(__name__)


def build_responders(settings: Settings, local: Responder) -> ResponderChain:
    """OpenAI only, Gemini only, both, or none: unconfigured providers are left out."""
    responders: list[Responder] = []
    for name in settings.ai_provider_order:
        if name == "local":
            responders.append(local)
        elif name == "openai" and settings.provider_configured("openai"):
            from services.responders.openai import OpenAIResponder

            responders.append(OpenAIResponder(settings))
        elif name == "gemini" and settings.provider_configured("gemini"):
            from services.responders.gemini import GeminiResponder

            responders.append(GeminiResponder(settings))
    if not responders:
        log.warning("no configured responder in AI_PROVIDER_ORDER; the local responder serves")
        responders.append(local)
    policy = Policy(
        attempt_timeout=settings.provider_timeout,
        first_token_timeout=settings.provider_first_token_timeout,
        deadline=settings.message_deadline,
        max_retries=settings.provider_max_retries,
        breaker_threshold=settings.breaker_failure_threshold,
        breaker_cooldown=settings.breaker_cooldown,
    )
    return ResponderChain(responders, policy)
