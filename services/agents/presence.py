"""Which agents have a live socket, across instances.

Each socket is an entry `sid -> expiry (ms)` in `P presence:<agentId>`; the instance holding
the socket refreshes it every ~ttl/3 seconds (`heartbeat`). `P presence` keeps, per agent,
the latest expiry of its live sockets, so counting online agents needs no scan. An instance
that dies stops refreshing and its sockets drop out after the ttl; expired entries are pruned
by the scripts and by every read.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

from services.agents.model import Keys, text

PRUNE = """
local function prune(key, now)
  local flat = redis.call('HGETALL', key)
  local live, latest = 0, 0
  for i = 1, #flat, 2 do
    local exp = tonumber(flat[i + 1])
    if exp == nil or exp <= now then
      redis.call('HDEL', key, flat[i])
    else
      live = live + 1
      if exp > latest then latest = exp end
    end
  end
  return live, latest
end
"""

# KEYS: sockets hash, presence zset, agent hash. ARGV: sid, now, ttl ms, agent id.
CONNECT_SCRIPT = (
    PRUNE
    + """
local now = tonumber(ARGV[2])
local exp = now + tonumber(ARGV[3])
local live = prune(KEYS[1], now)
redis.call('HSET', KEYS[1], ARGV[1], exp)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], 'GT', exp, ARGV[4])
if live > 0 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('HSET', KEYS[3], 'presence', 'online') end
return 1
"""
)

# KEYS: sockets hash, presence zset. ARGV: sid, now, agent id.
DISCONNECT_SCRIPT = (
    PRUNE
    + """
local live = prune(KEYS[1], tonumber(ARGV[2]))
redis.call('HDEL', KEYS[1], ARGV[1])
local left, latest = prune(KEYS[1], tonumber(ARGV[2]))
if left > 0 then
  redis.call('ZADD', KEYS[2], latest, ARGV[3])
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
if live > 0 then return 1 end
return 0
"""
)

# KEYS: presence zset, then one sockets hash per pair. ARGV: now, ttl ms, agent1, sid1, ...
HEARTBEAT_SCRIPT = (
    PRUNE
    + """
local now = tonumber(ARGV[1])
local exp = now + tonumber(ARGV[2])
local back = {}
for i = 2, #KEYS do
  local agent, sid = ARGV[2 * i - 1], ARGV[2 * i]
  local live = prune(KEYS[i], now)
  if live == 0 and back[agent] == nil then back[agent] = true; back[#back + 1] = agent end
  redis.call('HSET', KEYS[i], sid, exp)
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
  redis.call('ZADD', KEYS[1], 'GT', exp, agent)
end
local out = {}
for _, agent in ipairs(back) do out[#out + 1] = agent end
return out
"""
)


class PresenceTracker:
    def __init__(self, redis: Redis, keys: Keys, ttl_ms: int, clock: Callable[[], int]) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_ms = ttl_ms
        self.now_ms = clock
        self._connect = redis.register_script(CONNECT_SCRIPT)
        self._disconnect = redis.register_script(DISCONNECT_SCRIPT)
        self._heartbeat = redis.register_script(HEARTBEAT_SCRIPT)

    async def connected(self, agent_id: str, sid: str) -> bool:
        """Count a new socket; True when the agent just came online."""
        changed = await self._connect(
            keys=[self.keys.sockets(agent_id), self.keys.presence, self.keys.agent(agent_id)],
            args=[sid, self.now_ms(), self.ttl_ms, agent_id],
        )
        return bool(changed)

    async def disconnected(self, agent_id: str, sid: str) -> bool:
        """Forget a socket; True when it was the agent's last live one."""
        changed = await self._disconnect(
            keys=[self.keys.sockets(agent_id), self.keys.presence],
            args=[sid, self.now_ms(), agent_id],
        )
        return bool(changed)

    async def heartbeat(self, pairs: list[tuple[str, str]]) -> list[str]:
        """Refresh this instance's sockets; the agents that were offline and are back."""
        if not pairs:
            return []
        args: list[str | int] = [self.now_ms(), self.ttl_ms]
        for agent_id, sid in pairs:
            args += [agent_id, sid]
        back = await self._heartbeat(
            keys=[self.keys.presence, *(self.keys.sockets(a) for a, _ in pairs)], args=args
        )
        return [text(agent_id) for agent_id in back]

    async def online_ids(self) -> list[str]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self.keys.presence, "-inf", self.now_ms())
            pipe.zrange(self.keys.presence, 0, -1)
            _, ids = await pipe.execute()
        return [text(agent_id) for agent_id in ids]

    async def online_count(self) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self.keys.presence, "-inf", self.now_ms())
            pipe.zcard(self.keys.presence)
            _, count = await pipe.execute()
        return int(count)
