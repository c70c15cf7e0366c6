"""Routing a waiting conversation to an online agent.

    ROUTING=manual       agents claim from the queue (the default)
    ROUTING=round_robin  offer to the next online agent in turn
    ROUTING=least_busy   offer to the online agent holding the fewest conversations

An offer goes to one agent at a time (an `offer` event on their console); they accept
(a claim) or decline. An offer not accepted within OFFER_TIMEOUT moves to the next agent;
when every candidate has declined or timed out, the conversation waits in the queue as in
manual mode (and is offered again when someone new comes online). Candidates are online
and not away, below their capacity (most concurrent conversations, per agent, default
AGENT_CAPACITY), and in the conversation's team when it has one (a keyword mapped in
ROUTING_TEAMS, or a knowledge entry tagged `team:<name>`).

Keys, under the prefix P:
    P session:{<id>}          fields offerTo, offerName, offerExpires, team
    P session:{<id>}:declined set of agents who declined or let the offer time out
                              (the session's hash tag: the offer scripts stay in its slot)
    P routing:agent:<id>   hash capacity, teams (comma-separated)
    P routing:turn         counter for round robin

Offering is one Lua script (only an escalated conversation without a live offer gets
one), so instances routing side by side never offer one conversation to two agents.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from services.background import Periodic
from services.errors import Forbidden, InvalidPayload, TransitionRefused
from services.keys import session_key, session_part
from services.notifier import Notifier
from services.sessions import SessionManager, iso
from services.store import guarded, now_ms

log = logging.getLogger(__name__)
MODES = ("manual", "round_robin", "least_busy")

# KEYS: session, declined set; ARGV: agent id, agent name, expires (ms), now (ms)
OFFER_SCRIPT = """
if redis.call('HGET', KEYS[1], 'status') ~= 'escalated' then return 0 end
local live = tonumber(redis.call('HGET', KEYS[1], 'offerExpires') or '0')
if live > tonumber(ARGV[4]) then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'offerTo', ARGV[1], 'offerName', ARGV[2], 'offerExpires', ARGV[3])
return 1
"""

# KEYS: session, declined set; ARGV: agent id, now (ms), "timeout" | "decline"
# Ends the agent's offer: on decline only by that agent, on timeout only once it is due.
END_OFFER_SCRIPT = """
if redis.call('HGET', KEYS[1], 'offerTo') ~= ARGV[1] then return 0 end
local due = tonumber(redis.call('HGET', KEYS[1], 'offerExpires') or '0')
if ARGV[3] == 'timeout' and due > tonumber(ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], 'offerTo', 'offerName', 'offerExpires')
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], 86400000)
return 1
"""


class Directory(Protocol):
    async def online(self) -> list[dict[str, str]]: ...


class TaggedEntry(Protocol):
    @property
    def tags(self) -> tuple[str, ...]: ...


class TeamRules:
    """Which team a handoff belongs to: a keyword mapped in ROUTING_TEAMS
    (`refund=billing,cancel=billing`), else the matched knowledge entry's `team:<name>` tag."""

    def __init__(
        self, keyword_teams: dict[str, str], entry: Callable[[str], TaggedEntry | None] | None
    ) -> None:
        self.keyword_teams = {k.lower(): v.lower() for k, v in keyword_teams.items()}
        self.entry = entry

    @classmethod
    def parse(
        cls, pairs: list[str], entry: Callable[[str], TaggedEntry | None] | None
    ) -> TeamRules:
        mapping = {}
        for pair in pairs:
            keyword, sep, team = pair.partition("=")
            if not sep or not keyword.strip() or not team.strip():
                raise ValueError(f"ROUTING_TEAMS: {pair!r} is not keyword=team")
            mapping[keyword.strip()] = team.strip()
        return cls(mapping, entry)

    def team_for(self, reasons: Sequence[Any], sources: Sequence[Any]) -> str | None:
        for reason in reasons:
            if reason.rule == "keyword" and reason.detail.lower() in self.keyword_teams:
                return self.keyword_teams[reason.detail.lower()]
        if self.entry is not None:
            for source in sources[:1]:
                found = self.entry(source.id)
                for tag in found.tags if found is not None else ():
                    if tag.lower().startswith("team:"):
                        return tag[5:].strip().lower() or None
        return None


@dataclass(frozen=True, slots=True)
class AgentRouting:
    capacity: int
    teams: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "teams": list(self.teams)}


class Router:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        sessions: SessionManager,
        notifier: Notifier,
        directory: Directory,
        mode: str = "manual",
        offer_timeout_ms: int = 30_000,
        default_capacity: int = 5,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"ROUTING must be one of {', '.join(MODES)}")
        self.redis = redis
        self.prefix = prefix
        self.sessions = sessions
        self.notifier = notifier
        self.directory = directory
        self.mode = mode
        self.offer_timeout_ms = offer_timeout_ms
        self.default_capacity = default_capacity
        self._offer = redis.register_script(OFFER_SCRIPT)
        self._end = redis.register_script(END_OFFER_SCRIPT)
        self._watch = Periodic(
            "routing watch", min(5.0, max(0.2, offer_timeout_ms / 5000)), self.sweep
        )
        self.on_change: Callable[[str], Awaitable[None]] | None = None  # e.g. queue-updated

    @property
    def active(self) -> bool:
        return self.mode != "manual"

    def _session(self, session_id: str) -> str:
        return session_key(self.prefix, session_id)

    def _declined(self, session_id: str) -> str:
        return session_part(self.prefix, session_id, "declined")

    def _agent(self, agent_id: str) -> str:
        return f"{self.prefix}routing:agent:{agent_id}"

    # -- per-agent settings --------------------------------------------------------------
    @guarded
    async def settings_of(self, agent_id: str) -> AgentRouting:
        raw = await self.redis.hgetall(self._agent(agent_id))
        fields = {_text(k): _text(v) for k, v in raw.items()}
        teams = tuple(t for t in fields.get("teams", "").split(",") if t)
        return AgentRouting(int(fields.get("capacity") or self.default_capacity), teams)

    @guarded
    async def configure(
        self, agent_id: str, capacity: int | None, teams: list[str] | None
    ) -> AgentRouting:
        update: dict[str, str] = {}
        if capacity is not None:
            if capacity < 0:
                raise InvalidPayload("capacity must be 0 or more")
            update["capacity"] = str(capacity)
        if teams is not None:
            update["teams"] = ",".join(sorted({t.strip().lower() for t in teams if t.strip()}))
        for name, value in update.items():
            await self.redis.hset(self._agent(agent_id), name, value)
        return await self.settings_of(agent_id)

    # -- choosing ------------------------------------------------------------------------
    async def candidates(self, session_id: str, team: str | None) -> list[tuple[str, str]]:
        """(id, name) of agents who may get the offer, in the order the mode prefers."""
        online = [a for a in await self.directory.online() if a.get("presence") == "online"]
        if not online:
            return []
        declined = {_text(d) for d in await self.redis.smembers(self._declined(session_id))}
        load = Counter(
            s.fields["assignedTo"].decode()
            for s in await self.sessions.queue()
            if s.fields.get("assignedTo")
        )
        eligible = []
        for agent in sorted(online, key=lambda a: a["id"]):
            if agent["id"] in declined:
                continue
            settings = await self.settings_of(agent["id"])
            if load[agent["id"]] >= settings.capacity:
                continue
            if team and team not in settings.teams:
                continue
            eligible.append((agent["id"], agent["name"]))
        if not eligible:
            return []
        if self.mode == "least_busy":
            return sorted(eligible, key=lambda a: (load[a[0]], a[0]))
        turn = int(await self.redis.incr(f"{self.prefix}routing:turn"))
        start = turn % len(eligible)
        return eligible[start:] + eligible[:start]

    async def forget_declines(self, session_id: str) -> None:
        """A new escalation: everyone may be offered it again."""
        await self.redis.delete(self._declined(session_id))

    async def route(self, session_id: str) -> str | None:
        """Offer the conversation to the best candidate; the agent's id, or None."""
        if not self.active:
            return None
        snap = await self.sessions.snapshot(session_id)
        team = snap.fields.get("team", b"").decode() or None
        for agent_id, name in await self.candidates(session_id, team):
            expires = now_ms() + self.offer_timeout_ms
            offered = await self._offer(
                keys=[self._session(session_id), self._declined(session_id)],
                args=[agent_id, name, expires, now_ms()],
            )
            if not offered:
                return None  # someone else's offer is live, or the conversation moved on
            log.info("conversation offered", extra={"session": session_id[:8]})
            item = await self.sessions.snapshot(session_id)
            await self.notifier.to_agent(
                agent_id,
                "offer",
                {
                    "sessionId": session_id,
                    "expiresAt": iso(expires),
                    "team": team,
                    "timeoutSeconds": self.offer_timeout_ms / 1000,
                    "messageCount": item.length,
                },
            )
            await self._changed(session_id)
            return agent_id
        return None

    async def _changed(self, session_id: str) -> None:
        if self.on_change is not None:
            await self.on_change(session_id)

    async def decline(self, session_id: str, agent_id: str) -> str | None:
        """The offeree says no: the next candidate gets it (their id), or the queue does."""
        ended = await self._end(
            keys=[self._session(session_id), self._declined(session_id)],
            args=[agent_id, now_ms(), "decline"],
        )
        if not ended:
            session = await self.sessions.get(session_id)
            if session.status != "escalated":
                raise TransitionRefused(
                    f"the conversation is {session.status}",
                    status=session.status,
                    holder=session.holder,
                )
            raise Forbidden("this conversation is not offered to you")
        await self.notifier.to_agent(agent_id, "offer-withdrawn", {"sessionId": session_id})
        offered = await self.route(session_id)
        if offered is None:
            await self._changed(session_id)
        return offered

    # -- the watch: offers that time out ----------------------------------------------------
    def start(self) -> None:
        if self.active:
            self._watch.start()

    async def aclose(self) -> None:
        await self._watch.aclose()

    async def sweep(self) -> int:
        """Move timed-out offers on, and offer waiting conversations that have none."""
        moved = 0
        now = now_ms()
        for snap in await self.sessions.queue():
            f = snap.fields
            if f.get("status") != b"escalated":
                continue
            offer_to = f.get("offerTo", b"").decode()
            if offer_to and int(f.get("offerExpires") or 0) <= now:
                ended = await self._end(
                    keys=[self._session(snap.session_id), self._declined(snap.session_id)],
                    args=[offer_to, now, "timeout"],
                )
                if ended:
                    await self.notifier.to_agent(
                        offer_to,
                        "offer-withdrawn",
                        {"sessionId": snap.session_id, "reason": "timeout"},
                    )
                    offer_to = ""
                    if not await self.route(snap.session_id):
                        await self._changed(snap.session_id)
                    moved += 1
                    continue
            if not offer_to and await self.route(snap.session_id):
                moved += 1
        return moved


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
