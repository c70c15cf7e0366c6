"""Opaque signed sign-in tokens: `b64url(json {sub, jti, exp}) "." b64url(HMAC-SHA256)`.

`exp` is in milliseconds since the epoch. Signature and expiry are checked here without
Redis; whether the token is still allowed (not logged out or revoked) is the caller's job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from services.errors import Unauthorized

MAX_TOKEN = 1024


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    jti: str
    exp: int


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, payload.encode(), hashlib.sha256).digest()


def sign(key: bytes, claims: Claims) -> str:
    body = json.dumps(
        {"sub": claims.sub, "jti": claims.jti, "exp": claims.exp}, separators=(",", ":")
    )
    payload = _b64encode(body.encode())
    return f"{payload}.{_b64encode(_mac(key, payload))}"


def verify(key: bytes, token: str, now_ms: int) -> Claims:
    """The token's claims if it is well formed, signed with `key` and not expired."""
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        raise Unauthorized("invalid token")
    payload, signature = token.split(".")
    try:
        expected = _b64encode(_mac(key, payload))
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise Unauthorized("invalid token")
        data = json.loads(_b64decode(payload))
    except (binascii.Error, ValueError):  # includes Unicode errors
        raise Unauthorized("invalid token") from None
    if not isinstance(data, dict):
        raise Unauthorized("invalid token")
    sub, jti, exp = data.get("sub"), data.get("jti"), data.get("exp")
    if not (isinstance(sub, str) and sub and isinstance(jti, str) and jti):
        raise Unauthorized("invalid token")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise Unauthorized("invalid token")
    if exp <= now_ms:
        raise Unauthorized("token expired")
    return Claims(sub=sub, jti=jti, exp=exp)
