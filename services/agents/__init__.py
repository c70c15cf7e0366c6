"""Agents: accounts, password hashing, sign-in tokens, the login throttle and presence.

Key layout in Redis, under the prefix P (default `supportbot:`):

    P agent:<id>               hash    id, email, name, role, disabled (0|1), createdAt (ms),
                                       passwordHash (Argon2id), presence (online|away)
    P agents:by-email          hash    lower-cased e-mail -> agent id (HSETNX: one account each)
    P agent-token:<jti>        string  agent id; the token allowlist, TTL = the token's life
    P agent:<id>:tokens        set     that agent's jtis, so disabling or a new password revokes all
    P login-fail:acct:<email>  string  failed sign-ins for an e-mail, TTL = LOGIN_WINDOW
    P login-fail:ip:<ip>       string  failed sign-ins from an address, TTL = LOGIN_WINDOW
    P presence                 zset    agent id -> latest expiry (ms) of its live sockets
    P presence:<agentId>       hash    sid -> expiry (ms), refreshed by its instance's heartbeat

Every multi-key change (create, token issue, disable/reset with revocation, the throttle,
socket presence) is one Lua script, so concurrent callers on any instance see one order.
"""

from services.agents.model import PRESENCES, ROLES, Agent, Keys
from services.agents.service import AgentService

__all__ = ["PRESENCES", "ROLES", "Agent", "AgentService", "Keys"]
