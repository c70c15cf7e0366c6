"""Redis key names that must share a hash slot, built in one place.

On Redis Cluster a Lua script or a MULTI may only touch keys of one hash slot, and a key's
slot comes from the part between its first `{` and `}` (its hash tag). So:

- every key of one session carries the session id as its tag:
  `P session:{<id>}`, `P session:{<id>}:messages`, `:notice`, `:declined`;
- small shared families that scripts or transactions touch together carry one tag each:
  `{agents}` (accounts, tokens, presence, sign-in throttles), `{tickets}`, `{kb}`,
  `{webhooks}`, `{proposals}` (agent assist); analytics tags its own keys;
- the global sets `P sessions:active` and `P queue` stay untagged: no script touches them
  together with a session on a cluster (services/store.py updates them in a second step).

REDIS_KEY_PREFIX must not contain `{` or `}` (the settings refuse it), or it would become
every key's tag.
"""

from __future__ import annotations

SESSION = "session:"
AGENTS = "{agents}:"
TICKETS = "{tickets}:"
KNOWLEDGE = "{kb}:"
WEBHOOKS = "{webhooks}:"
PROPOSALS = "{proposals}:"


def session_key(prefix: str, session_id: str) -> str:
    """The session's hash; its id is the hash tag of every key of the session."""
    return f"{prefix}{SESSION}{{{session_id}}}"


def session_part(prefix: str, session_id: str, part: str) -> str:
    """Another key of the session (`messages`, `notice`, `declined`), in the same slot."""
    return f"{session_key(prefix, session_id)}:{part}"


def ticket_key(prefix: str, ticket_id: str) -> str:
    return f"{prefix}{TICKETS}ticket:{ticket_id}"


def ticket_index(prefix: str) -> str:
    """Ticket id -> createdAt (ms), in the tickets' slot."""
    return f"{prefix}{TICKETS}index"


def parse_session_key(prefix: str, key: str) -> tuple[str, str] | None:
    """(session id, part) of a session key ("" for the hash), or None for other keys."""
    head = f"{prefix}{SESSION}{{"
    if not key.startswith(head):
        return None
    session_id, sep, rest = key[len(head) :].partition("}")
    if not sep or not session_id or (rest and not rest.startswith(":")):
        return None
    return session_id, rest[1:]
