"""Builds the responder chain from settings: configured providers in AI_PROVIDER_ORDER."""

from __future__ import annotations

from services.config import Settings
from services.responders.base import Responder
from services.responders.chain import ResponderChain


def build_responders(settings: Settings, local: Responder) -> ResponderChain:
    order = [name for name in settings.ai_provider_order if name == "local"] or ["local"]
    return ResponderChain([local] if "local" in order else [])
