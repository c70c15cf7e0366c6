"""GET /api/v1/i18n/messages: the page's and the widget's labels in the customer's language."""

from __future__ import annotations

from connexion import request

from handlers import container, ok
from services.i18n import negotiate


async def get_messages(language: str | None = None):
    catalogues = container().catalogues
    chosen = negotiate(
        catalogues.languages,
        setting=language,
        accept_language=request.headers.get("accept-language"),
    )
    served = chosen or "en"
    return ok(
        {
            "language": served,
            "negotiated": chosen is not None,
            "languages": sorted(catalogues.languages),
            "messages": catalogues.public(served),
        }
    )
