"""AgentService: accounts, sign-in with a throttle, token allowlist, and presence."""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable

from argon2 import PasswordHasher
from redis.asyncio import Redis

from services.agents import tokens
from services.agents.model import (
    Agent,
    Keys,
    Presence,
    check_email,
    check_name,
    check_password,
    check_presence,
    check_role,
    normalize_email,
    text,
)
from services.agents.passwords import Passwords
from services.agents.presence import PresenceTracker
from services.errors import (
    AgentExists,
    AgentNotFound,
    InvalidCredentials,
    TooManyAttempts,
    Unauthorized,
)
from services.store import guarded

log = logging.getLogger(__name__)

# Aliases: inside AgentService, `list` is a method.
Sockets = list[tuple[str, str]]
Ids = list[str]
OnlineAgents = list[dict[str, str]]

# KEYS: by-email, agent hash. ARGV: email, id, field1, value1, ...
CREATE_SCRIPT = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
return 1
"""

# KEYS: agent hash, allowlist key, the agent's token set.
# ARGV: the hash the password was verified against, a new hash or '', jti, ttl ms, agent id.
# Refuses (0) when the account went, or its password changed, since the password was checked,
# and (-1) when it was disabled meanwhile; so a revocation is never outrun by a sign-in.
ISSUE_SCRIPT = """
local row = redis.call('HMGET', KEYS[1], 'passwordHash', 'disabled')
if not row[1] or row[1] ~= ARGV[1] then return 0 end
if row[2] == '1' then return -1 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'passwordHash', ARGV[2]) end
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
redis.call('SADD', KEYS[3], ARGV[3])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end
return 1
"""

# KEYS: agent hash, the agent's token set. ARGV: allowlist key prefix, revoke (0|1), field1,
# value1, ... Updates an existing agent and, when asked, deletes all its tokens in the same step.
UPDATE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if ARGV[2] == '1' then
  for _, jti in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('DEL', ARGV[1] .. jti) end
  redis.call('DEL', KEYS[2])
end
return 1
"""

# KEYS: account counter, address counter. ARGV: max failures, window s.
# Throttled: the ms until the blocking window frees. Otherwise counts this attempt as a
# failure up front (so parallel guesses cannot slip past the limit) and returns 0.
RESERVE_SCRIPT = """
local wait = 0
for i = 1, 2 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[1]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      redis.call('EXPIRE', KEYS[i], ARGV[2])
      ttl = tonumber(ARGV[2]) * 1000
    end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for i = 1, 2 do
  if redis.call('INCR', KEYS[i]) == 1 or redis.call('PTTL', KEYS[i]) < 0 then
    redis.call('EXPIRE', KEYS[i], ARGV[2])
  end
end
return 0
"""

# KEYS: account counter, address counter. A success clears the account's failures and takes
# back the attempt it had counted against the address.
SUCCEED_SCRIPT = """
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 1
"""


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class AgentService:
    """Agent accounts and sign-in over Redis; see the package docstring for the keys.

    `signing_key` signs tokens (pass settings.agent_token_secret or a derived key);
    `hasher` defaults to argon2-cffi's PasswordHasher (tests pass cheap parameters);
    `clock` returns epoch milliseconds.
    """

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        signing_key: bytes,
        token_ttl: int,
        max_failures: int = 5,
        window: int = 300,
        presence_ttl: int = 45,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        if not signing_key:
            raise ValueError("signing_key must not be empty")
        self.redis = redis
        self.keys = Keys(prefix)
        self.signing_key = signing_key
        self.token_ttl = token_ttl
        self.max_failures = max_failures
        self.window = window
        self.presence_ttl = presence_ttl
        self.passwords = Passwords(hasher)
        self.now_ms = clock
        self._create = redis.register_script(CREATE_SCRIPT)
        self._issue = redis.register_script(ISSUE_SCRIPT)
        self._update = redis.register_script(UPDATE_SCRIPT)
        self._reserve = redis.register_script(RESERVE_SCRIPT)
        self._succeed = redis.register_script(SUCCEED_SCRIPT)
        self.tracker = PresenceTracker(redis, self.keys, presence_ttl * 1000, clock)

    # --- accounts ------------------------------------------------------------------------
    @guarded
    async def create(self, email: str, name: str, password: str, role: str = "agent") -> Agent:
        """A new account; AgentExists when the e-mail has one (checked atomically)."""
        agent = Agent(
            id=secrets.token_hex(10),
            email=check_email(email),
            name=check_name(name),
            role=check_role(role),
            disabled=False,
            created_at=self.now_ms(),
        )
        password_hash = await self.passwords.hash(check_password(password))
        fields: dict[str, str | int] = {
            "id": agent.id,
            "email": agent.email,
            "name": agent.name,
            "role": agent.role,
            "disabled": "0",
            "createdAt": agent.created_at,
            "passwordHash": password_hash,
            "presence": agent.presence,
        }
        args: list[str | int] = [agent.email, agent.id]
        for field, value in fields.items():
            args += [field, value]
        created = await self._create(
            keys=[self.keys.by_email, self.keys.agent(agent.id)], args=args
        )
        if not created:
            raise AgentExists()
        log.info("agent created: %s (%s, %s)", agent.id, agent.email, agent.role)
        return agent

    async def ensure_admin(
        self, email: str, password: str, name: str = "Administrator"
    ) -> Agent | None:
        """Create the first admin unless that e-mail already has an account."""
        if await self.find_id(email) is not None:
            return None
        try:
            return await self.create(email, name, password, role="admin")
        except AgentExists:
            return None

    @guarded
    async def find_id(self, email: str) -> str | None:
        agent_id = await self.redis.hget(self.keys.by_email, normalize_email(email))
        return text(agent_id) if agent_id is not None else None

    @guarded
    async def get(self, agent_id: str) -> Agent:
        raw = await self.redis.hgetall(self.keys.agent(agent_id))
        if not raw:
            raise AgentNotFound()
        return Agent.from_hash({text(k): text(v) for k, v in raw.items()})

    @guarded
    async def list(self) -> list[Agent]:
        """Every account, oldest first."""
        ids = await self.redis.hvals(self.keys.by_email)
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id in ids:
                pipe.hgetall(self.keys.agent(text(agent_id)))
            rows = await pipe.execute()
        agents = [Agent.from_hash(raw) for raw in rows if raw]
        return sorted(agents, key=lambda a: (a.created_at, a.email))

    async def set_disabled(self, agent_id: str, disabled: bool) -> Agent:
        """Disable (revoking every token) or enable an account."""
        await self._change(agent_id, {"disabled": "1" if disabled else "0"}, revoke=disabled)
        log.info("agent %s %s", agent_id, "disabled" if disabled else "enabled")
        return await self.get(agent_id)

    async def reset_password(self, agent_id: str, password: str) -> Agent:
        """Set a new password and revoke every token of the account."""
        password_hash = await self.passwords.hash(check_password(password))
        await self._change(agent_id, {"passwordHash": password_hash}, revoke=True)
        log.info("agent %s: password reset, sign-ins revoked", agent_id)
        return await self.get(agent_id)

    async def set_presence(self, agent_id: str, presence: str) -> Agent:
        """online | away, as the agent chooses; kept until the agent next comes online."""
        await self._change(agent_id, {"presence": check_presence(presence)}, revoke=False)
        return await self.get(agent_id)

    @guarded
    async def _change(self, agent_id: str, fields: dict[str, str], *, revoke: bool) -> None:
        args = [self.keys.token_prefix, "1" if revoke else "0"]
        for field, value in fields.items():
            args += [field, value]
        keys = [self.keys.agent(agent_id), self.keys.tokens(agent_id)]
        if not await self._update(keys=keys, args=args):
            raise AgentNotFound()

    # --- sign-in -------------------------------------------------------------------------
    @guarded
    async def login(self, email: str, password: str, ip: str) -> tuple[str, int, Agent]:
        """(token, expiresAt ms, agent); InvalidCredentials or TooManyAttempts otherwise."""
        email = normalize_email(email)
        counters = [self.keys.fail_account(email), self.keys.fail_ip(ip or "unknown")]
        wait_ms = await self._reserve(keys=counters, args=[self.max_failures, self.window])
        if wait_ms:
            log.warning("sign-in throttled (from %s)", ip)
            raise TooManyAttempts(math.ceil(int(wait_ms) / 1000))
        agent_id = await self.redis.hget(self.keys.by_email, email)
        raw = await self.redis.hgetall(self.keys.agent(text(agent_id))) if agent_id else {}
        row = {text(k): text(v) for k, v in raw.items()}
        if not row:
            await self.passwords.verify_dummy(password)
            # not the e-mail typed: people sometimes type a password into that field
            log.info("sign-in failed: no such account (from %s)", ip)
            raise InvalidCredentials()
        agent = Agent.from_hash(row)
        stored = row.get("passwordHash", "")
        if not await self.passwords.verify(stored, password) or agent.disabled:
            log.info("sign-in failed for agent %s (from %s)", agent.id, ip)
            raise InvalidCredentials()
        rehashed = await self.passwords.rehashed(stored, password)
        token, expires_at = self._new_token(agent.id)
        claims = tokens.verify(self.signing_key, token, self.now_ms())
        issued = await self._issue(
            keys=[
                self.keys.agent(agent.id),
                self.keys.token(claims.jti),
                self.keys.tokens(agent.id),
            ],
            args=[stored, rehashed or "", claims.jti, self.token_ttl * 1000, agent.id],
        )
        if int(issued) != 1:
            raise InvalidCredentials()
        await self._succeed(keys=counters)
        log.info("agent %s signed in (from %s)", agent.id, ip)
        return token, expires_at, agent

    def _new_token(self, agent_id: str) -> tuple[str, int]:
        expires_at = self.now_ms() + self.token_ttl * 1000
        claims = tokens.Claims(sub=agent_id, jti=secrets.token_urlsafe(16), exp=expires_at)
        return tokens.sign(self.signing_key, claims), expires_at

    @guarded
    async def authenticate(self, token: str) -> Agent:
        """The signed-in agent; Unauthorized if the token is bad, expired or revoked, or the
        account is disabled or gone. Signature and expiry first, then one round trip."""
        claims = tokens.verify(self.signing_key, token, self.now_ms())
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.token(claims.jti))
            pipe.hgetall(self.keys.agent(claims.sub))
            allowed, raw = await pipe.execute()
        if allowed is None or text(allowed) != claims.sub:
            raise Unauthorized("token revoked")
        if not raw:
            raise Unauthorized("no such agent")
        agent = Agent.from_hash(raw)
        if agent.disabled:
            raise Unauthorized("account disabled")
        return agent

    @guarded
    async def logout(self, token: str) -> None:
        """The token stops working everywhere (a revoked or expired one is fine)."""
        try:
            claims = tokens.verify(self.signing_key, token, self.now_ms())
        except Unauthorized as exc:
            if exc.detail != "token expired":
                raise
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.token(claims.jti))
            pipe.srem(self.keys.tokens(claims.sub), claims.jti)
            await pipe.execute()

    # --- presence ------------------------------------------------------------------------
    @guarded
    async def connected(self, agent_id: str, sid: str) -> bool:
        """A socket of the agent opened; True when the agent just came online."""
        return await self.tracker.connected(agent_id, sid)

    @guarded
    async def disconnected(self, agent_id: str, sid: str) -> bool:
        """A socket closed; True when it was the agent's last live one."""
        return await self.tracker.disconnected(agent_id, sid)

    @guarded
    async def heartbeat(self, pairs: Sockets) -> Ids:
        """Keep this instance's (agent id, sid) sockets live for another presence_ttl;
        returns the agents that had dropped out and are back (rare: after a long stall)."""
        return await self.tracker.heartbeat(pairs)

    @guarded
    async def online(self) -> OnlineAgents:
        """Agents with a live socket: [{id, name, presence}], by name."""
        ids = await self.tracker.online_ids()
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id in ids:
                pipe.hmget(self.keys.agent(agent_id), ["name", "presence", "disabled"])
            rows = await pipe.execute()
        agents = [
            {"id": agent_id, "name": text(name), "presence": _presence(presence)}
            for agent_id, (name, presence, disabled) in zip(ids, rows, strict=True)
            if name is not None and text(disabled) != "1"
        ]
        return sorted(agents, key=lambda a: (a["name"].lower(), a["id"]))

    @guarded
    async def online_ids(self) -> set[str]:
        """Ids of the agents with a live socket (for marking a list of agents online)."""
        return set(await self.tracker.online_ids())

    @guarded
    async def online_count(self) -> int:
        return await self.tracker.online_count()


def _presence(value: bytes | str | None) -> Presence:
    return "away" if text(value) == "away" else "online"
