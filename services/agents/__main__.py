"""Add an agent account from the command line.

    python -m services.agents add --email E --name N [--role agent|admin]

The password is asked twice at a terminal, or read from the first line of stdin when stdin
is not a terminal (`printf '%s\\n' "$PW" | python -m services.agents add ...`). Prints the new
agent's id. Exits 1 when the e-mail already has an account or the input is invalid, 2 when
Redis is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from services.agents.model import ROLES
from services.agents.service import AgentService
from services.config import load_settings
from services.errors import AgentExists, DomainError, StorageUnavailable
from services.redis_client import open_redis
from services.store import UNREACHABLE


def read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise ValueError("the passwords do not match")
    return first


async def add(args: argparse.Namespace, password: str) -> int:
    settings = load_settings()
    redis = open_redis(
        settings.redis_dsn,
        cluster=settings.redis_cluster,
        socket_connect_timeout=2,
        socket_timeout=5,
    )
    # Creating accounts signs nothing; the key only satisfies the constructor.
    service = AgentService(
        redis,
        settings.redis_key_prefix,
        signing_key=os.urandom(32),
        token_ttl=settings.agent_token_ttl,
    )
    try:
        await redis.ping()
        agent = await service.create(args.email, args.name, password, role=args.role)
    except (*UNREACHABLE, StorageUnavailable) as exc:
        print(
            f"error: Redis ({settings.redis_setting_name}) is unreachable: {exc}", file=sys.stderr
        )
        return 2
    except AgentExists:
        print(
            f"error: an agent with e-mail {args.email.strip().lower()} already exists",
            file=sys.stderr,
        )
        return 1
    except DomainError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()
    print(agent.id)
    print(f"created {agent.role} {agent.name} <{agent.email}>", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.agents")
    commands = parser.add_subparsers(dest="command", required=True)
    add_parser = commands.add_parser("add", help="add an agent account")
    add_parser.add_argument("--email", required=True)
    add_parser.add_argument("--name", required=True)
    add_parser.add_argument("--role", choices=ROLES, default="agent")
    args = parser.parse_args(argv)
    try:
        password = read_password()
    except (ValueError, EOFError, KeyboardInterrupt) as exc:
        print(f"error: {str(exc) or 'no password given'}", file=sys.stderr)
        return 1
    return asyncio.run(add(args, password))


if __name__ == "__main__":
    sys.exit(main())
