"""The admin API key (X-API-Key), checked by Connexion from the spec's security scheme."""

from __future__ import annotations

import hmac
from typing import Any


def admin_key_info(apikey: str, required_scopes: Any = None, request: Any = None) -> dict | None:
    expected = request.state.container.settings.admin_api_key if request is not None else None
    if expected is None:
        return None  # no key configured: the admin API is closed
    if hmac.compare_digest(apikey.encode(), expected.get_secret_value().encode()):
        return {"sub": "admin"}
    return None
