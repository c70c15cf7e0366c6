"""Agents: accounts, password hashing, sign-in tokens, the login throttle and presence.

Key layout in Redis, under the prefix P (default `supportbot:`), A = `P {agents}:`:

    A agent:<id>               hash    id, email, name, role, disabled (0|1), createdAt (ms),
                                       passwordHash (Argon2id), presence (online|away)
    A agents:by-email          hash    lower-cased e-mail -> agent id (HSETNX: one account each)
    A agent-token:<jti>        string  agent id; the token allowlist, TTL = the token's life
    A agent:<id>:tokens        set     that agent's jtis, so disabling or a new password revokes all
    A login-fail:acct:<email>  string  failed sign-ins for an e-mail, TTL = LOGIN_WINDOW
    A login-fail:ip:<ip>       string  failed sign-ins from an address, TTL = LOGIN_WINDOW
    A presence                 zset    agent id -> latest expiry (ms) of its live sockets
    A presence:<agentId>       hash    sid -> expiry (ms), refreshed by its instance's heartbeat

Every multi-key change (create, token issue, disable/reset with revocation, the throttle,
socket presence) is one Lua script, so concurrent callers on any instance see one order.
All of them share the hash tag `{agents}`, so on Redis Cluster they live in one slot (the
revoke script builds token keys inside Lua: they carry the same tag). Agents are few; the
slot holds accounts and sockets, not conversations.
"""

from services.agents.model import PRESENCES, ROLES, Agent, Keys
from services.agents.service import AgentService

__all__ = ["PRESENCES", "ROLES", "Agent", "AgentService", "Keys"]
