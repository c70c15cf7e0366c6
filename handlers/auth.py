"""Credentials, checked by Connexion from the spec's security schemes: the admin API key
(X-API-Key, machine to machine) and agents' bearer tokens."""

from __future__ import annotations

import hmac
from typing import Any

from connexion.context import context
from connexion.exceptions import Forbidden as ForbiddenProblem

from services.errors import DomainError, StorageUnavailable


def admin_key_info(apikey: str, required_scopes: Any = None, request: Any = None) -> dict | None:
    expected = request.state.container.settings.admin_api_key if request is not None else None
    if expected is None:
        return None  # no key configured: the admin API is closed
    if hmac.compare_digest(apikey.encode(), expected.get_secret_value().encode()):
        return {"sub": "admin"}
    return None


async def agent_token_info(token: str, request: Any = None) -> dict | None:
    """Any enabled agent's live token; None (401) for a bad, expired or revoked one."""
    try:
        agent = await request.state.container.agents.authenticate(token)
    except StorageUnavailable:
        raise
    except DomainError:
        return None
    return {"sub": agent.id, "agent": agent, "token": token}


async def admin_token_info(token: str, request: Any = None) -> dict | None:
    """An admin's token; an agent's valid token is 403, not 401."""
    info = await agent_token_info(token, request)
    if info is not None and not info["agent"].is_admin:
        raise ForbiddenProblem(detail="this needs an admin's sign-in")
    return info


def current_agent() -> Any:
    """The signed-in agent of this request (from the bearer token)."""
    return context["token_info"]["agent"]


def current_token() -> str:
    return str(context["token_info"]["token"])
