"""Import knowledge into the running knowledge base (every instance sharing the Redis
swaps to it within seconds), or just check a file.

    python -m services.knowledge.importer PATH [--check] [--dataset]

PATH: intents YAML/JSON, FAQ CSV (question,answer), an article (Markdown/HTML), a public
intent dataset (CLINC150-layout JSON or text,label CSV: its train splits become intents;
recognised by its shape, or forced with --dataset) or a folder of these. A bad file
prints the file, line and problem, exits 2 and changes nothing. --check reads the file
and checks the engine could serve it, without touching Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from services.config import load_settings
from services.container import connect_redis
from services.errors import InvalidKnowledge
from services.knowledge.datasets import as_knowledge, load_dataset
from services.knowledge.formats import KnowledgeFormatError, load_knowledge
from services.knowledge.model import KnowledgeBase
from services.knowledge.service import KnowledgeService, check_servable


def read(path: str, dataset: bool) -> KnowledgeBase:
    if dataset:
        return as_knowledge(load_dataset(path), name=path)
    return load_knowledge(path)


async def run(args: argparse.Namespace) -> int:
    try:
        kb = await asyncio.to_thread(read, args.path, args.dataset)
    except KnowledgeFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        check_servable(kb)
    except InvalidKnowledge as exc:
        print(f"error: {args.path}: {exc.detail}", file=sys.stderr)
        return 2
    if args.check:
        print(json.dumps({"ok": True, "entries": len(kb.entries)}))
        return 0
    settings = load_settings()
    redis = await connect_redis(settings)
    if redis is None:
        print("error: no Redis to import into (set REDIS_URL)", file=sys.stderr)
        return 2
    service = KnowledgeService(settings, redis=redis, key_prefix=settings.redis_key_prefix)
    try:
        await service.replace(kb)
        await service.wait_idle()
    except InvalidKnowledge as exc:
        print(f"error: {args.path}: {exc.detail}", file=sys.stderr)
        return 2
    finally:
        await service.aclose()
        await redis.aclose()
    if service.last_error:
        print(f"error: {args.path}: {service.last_error}", file=sys.stderr)
        return 2
    print(json.dumps({"ok": True, "version": service.version, "entries": len(kb.entries)}))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Import knowledge into the knowledge base.")
    parser.add_argument("path")
    parser.add_argument("--check", action="store_true", help="only check the file")
    parser.add_argument("--dataset", action="store_true", help="PATH is a public intent dataset")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
