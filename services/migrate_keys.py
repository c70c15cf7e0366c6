"""One-off move of data stored before hash tags (0.x) to the Cluster-ready key layout.

    make migrate-keys            (python -m services.migrate_keys [--dry-run])

Run it once, with every instance stopped, after upgrading and before starting the new
version, against the same REDIS_URL / REDIS_KEY_PREFIX. Each old key is copied to its new
name with DUMP/RESTORE (keeping its remaining time to live) and then deleted, one key at a
time: it works on one server, behind Sentinel and on a Cluster (where old and new names
may live on different nodes), and a second run finds nothing left to move. A key whose new
name already exists is left where it is and counted as a conflict.

Old -> new names (P = REDIS_KEY_PREFIX):
    P session:<id>[:part]      -> P session:{<id>}[:part]
    P agent:..., P agents:by-email, P agent-token:..., P login-fail:..., P presence[:...]
                               -> P {agents}:<the same>
    P ticket:<id>              -> P {tickets}:ticket:<id>
    P tickets                  -> P {tickets}:index
    P kb:current, P kb:version:<v>   -> P {kb}:current, P {kb}:version:<v>
    P webhooks:<rest>          -> P {webhooks}:<rest>
    P proposal:<id>, P proposals     -> P {proposals}:proposal:<id>, P {proposals}:index
Everything else (sessions:active, queue, user:..., routing:..., limits..., budget:...)
keeps its name.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.keys import (
    AGENTS,
    KNOWLEDGE,
    PROPOSALS,
    TICKETS,
    WEBHOOKS,
    session_key,
    ticket_index,
)

log = logging.getLogger(__name__)

AGENT_FAMILIES = ("agent:", "agents:by-email", "agent-token:", "login-fail:", "presence")


def new_name(prefix: str, key: str) -> str | None:
    """The key's name in the tagged layout, or None when it keeps its name."""
    if not key.startswith(prefix) or "{" in key[len(prefix) :]:
        return None
    name = key[len(prefix) :]
    if name.startswith("session:"):
        session_id, sep, part = name[len("session:") :].partition(":")
        return session_key(prefix, session_id) + (f":{part}" if sep else "") if session_id else None
    if name.startswith(AGENT_FAMILIES):
        return prefix + AGENTS + name
    if name.startswith("ticket:"):
        return prefix + TICKETS + name
    if name == "tickets":
        return ticket_index(prefix)
    if name == "kb:current" or name.startswith("kb:version:"):
        return prefix + KNOWLEDGE + name[len("kb:") :]
    if name.startswith("webhooks:"):
        return prefix + WEBHOOKS + name[len("webhooks:") :]
    if name.startswith("proposal:"):
        return prefix + PROPOSALS + name
    if name == "proposals":
        return prefix + PROPOSALS + "index"
    return None


@dataclass
class Moved:
    moved: int = 0
    conflicts: int = 0
    gone: int = 0  # expired or deleted between the scan and the move


async def migrate(redis: Redis, prefix: str, *, dry_run: bool = False) -> Moved:
    """Move every key of the old layout under `prefix`; the counts."""
    result = Moved()
    async for raw in redis.scan_iter(match=f"{prefix}*", count=500):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        target = new_name(prefix, key)
        if target is None:
            continue
        if dry_run:
            result.moved += 1
            continue
        payload, ttl = await redis.dump(key), await redis.pttl(key)
        if payload is None:
            result.gone += 1
            continue
        try:
            await redis.restore(target, max(int(ttl), 0), payload)
        except ResponseError as exc:
            if "BUSYKEY" not in str(exc):
                raise
            log.warning("not moved: the new name exists", extra={"key": key, "to": target})
            result.conflicts += 1
            continue
        await redis.delete(key)
        result.moved += 1
    return result


async def main(argv: list[str] | None = None) -> int:
    from services.config import load_settings
    from services.logs import configure_logging
    from services.redis_client import open_redis

    parser = argparse.ArgumentParser(prog="python -m services.migrate_keys")
    parser.add_argument("--dry-run", action="store_true", help="count, move nothing")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level, settings.pii_phone_region)
    redis = open_redis(settings.redis_dsn, cluster=settings.redis_cluster)
    try:
        result = await migrate(redis, settings.redis_key_prefix, dry_run=args.dry_run)
    finally:
        await redis.aclose()
    verb = "would move" if args.dry_run else "moved"
    print(f"{verb} {result.moved} keys; {result.conflicts} conflicts, {result.gone} gone meanwhile")
    return 1 if result.conflicts else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
