"""Builds the responder chain from settings: configured providers in AI_PROVIDER_ORDER."""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from services.config import Settings
from services.guard.budget import TokenBudget
from services.guard.output import OutputGuard, canary
from services.metrics import Metrics
from services.responders.base import Responder
from services.responders.chain import Policy, ResponderChain
from services.responders.prompting import system_prompt

log = logging.getLogger(__name__)


def policy_from(settings: Settings) -> Policy:
    return Policy(
        attempt_timeout=settings.provider_timeout,
        first_token_timeout=settings.provider_first_token_timeout,
        deadline=settings.message_deadline,
        max_retries=settings.provider_max_retries,
        breaker_threshold=settings.breaker_failure_threshold,
        breaker_cooldown=settings.breaker_cooldown,
    )


def build_responders(
    settings: Settings,
    local: Responder,
    *,
    redis: Redis | None = None,
    metrics: Metrics | None = None,
) -> ResponderChain:
    """OpenAI only, Gemini only, both, or none: providers without settings are left out,
    the rest keep AI_PROVIDER_ORDER's order. The embedded responder, when listed, goes last
    (it always answers, so nothing after it would ever be asked); with no provider
    configured it serves alone. With `redis` the token budgets apply (services/guard/)."""
    order = settings.ai_provider_order
    responders: list[Responder] = []
    for name in order:
        if name == "openai" and settings.provider_configured("openai"):
            from services.responders.openai import OpenAIResponder

            responders.append(OpenAIResponder(settings))
        elif name == "gemini" and settings.provider_configured("gemini"):
            from services.responders.gemini import GeminiResponder

            responders.append(GeminiResponder(settings))
    if "local" in order:
        if order[-1] != "local" and responders:
            log.warning(
                "AI_PROVIDER_ORDER lists local before a language model; local goes last",
                extra={"order": order},
            )
        responders.append(local)
    elif not responders:
        log.warning(
            "no provider in AI_PROVIDER_ORDER is configured; the local responder serves",
            extra={"order": order},
        )
        responders.append(local)
    models = {"openai": settings.openai_model, "gemini": settings.gemini_model}
    unconfigured = {
        n: models[n] for n in order if n in models and not settings.provider_configured(n)
    }
    log.info(
        "responder chain",
        extra={"order": [r.name for r in responders], "unconfigured": list(unconfigured)},
    )
    budget = (
        TokenBudget(
            redis,
            settings.redis_key_prefix,
            session_budget=settings.session_token_budget,
            daily_budget=settings.daily_token_budget,
        )
        if redis is not None
        else None
    )
    return ResponderChain(
        responders,
        policy_from(settings),
        unconfigured=unconfigured,
        budget=budget,
        guard=OutputGuard(system_prompt(settings), canary()),
        metrics=metrics,
    )
