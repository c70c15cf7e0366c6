"""The agent record and the Redis key names, built in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from services.errors import InvalidPayload
from services.keys import AGENTS
from services.sessions import iso

Role = Literal["agent", "admin"]
Presence = Literal["online", "away"]
ROLES: tuple[Role, ...] = ("agent", "admin")
PRESENCES: tuple[Presence, ...] = ("online", "away")
MIN_PASSWORD = 8
MAX_NAME = 100
BLANKS = " \t\r\n\f\v"  # ASCII white space, as the spec's patterns name it
EMAIL = re.compile(r"^[^@ \t\r\n\f\v]+@[^@ \t\r\n\f\v]+$")


def text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def normalize_email(email: str) -> str:
    return email.strip(BLANKS).lower()


def check_email(email: str) -> str:
    email = normalize_email(email)
    if not EMAIL.match(email) or len(email) > 254:
        raise InvalidPayload("email must be an e-mail address")
    return email


def check_name(name: str) -> str:
    name = name.strip(BLANKS)
    if not name or len(name) > MAX_NAME:
        raise InvalidPayload(f"name must be 1 to {MAX_NAME} characters")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidPayload(f"password must be at least {MIN_PASSWORD} characters")
    return password


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidPayload(f"role must be one of {', '.join(ROLES)}")
    return role


def check_presence(presence: str) -> Presence:
    if presence not in PRESENCES:
        raise InvalidPayload(f"presence must be one of {', '.join(PRESENCES)}")
    return presence


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    email: str
    name: str
    role: Role
    disabled: bool
    created_at: int
    presence: Presence = "online"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "role": self.role,
            "disabled": self.disabled,
            "createdAt": iso(self.created_at),
        }

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes] | dict[str, str]) -> Agent:
        fields = {text(k): text(v) for k, v in raw.items()}
        role, presence = fields.get("role", "agent"), fields.get("presence", "online")
        return cls(
            id=fields["id"],
            email=fields["email"],
            name=fields["name"],
            role=role if role in ROLES else "agent",
            disabled=fields.get("disabled") == "1",
            created_at=int(fields.get("createdAt") or 0),
            presence=presence if presence in PRESENCES else "online",
        )


@dataclass(frozen=True, slots=True)
class Keys:
    """Every agent key carries the `{agents}` hash tag: the scripts that touch an account, its
    tokens, its presence or the sign-in throttles together stay in one slot on a cluster."""

    prefix: str

    @property
    def base(self) -> str:
        return self.prefix + AGENTS

    def agent(self, agent_id: str) -> str:
        return f"{self.base}agent:{agent_id}"

    def tokens(self, agent_id: str) -> str:
        return f"{self.base}agent:{agent_id}:tokens"

    @property
    def by_email(self) -> str:
        return f"{self.base}agents:by-email"

    @property
    def token_prefix(self) -> str:
        return f"{self.base}agent-token:"

    def token(self, jti: str) -> str:
        return self.token_prefix + jti

    def fail_account(self, email: str) -> str:
        return f"{self.base}login-fail:acct:{email}"

    def fail_ip(self, ip: str) -> str:
        return f"{self.base}login-fail:ip:{ip}"

    @property
    def presence(self) -> str:
        return f"{self.base}presence"

    def sockets(self, agent_id: str) -> str:
        return f"{self.base}presence:{agent_id}"
