"""How long one full garbage collection stops the event loop in a started instance (its
container started as the app's lifespan starts it, production settings), before and after
`gc.freeze()` moves start-up's objects out of the collector's reach (app.py does so once
the container has started). Every request and socket waits out such a pause; a busy
instance with many sockets meets one every few seconds.

    python -m bench.gc_pause [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time

from bench.rest_load import bench_env, delete_keys


def full_collections(repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        gc.collect()
        times.append(round((time.perf_counter() - started) * 1000, 1))
    return times


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    redis_url, prefix, env = bench_env()
    os.environ.update(env)
    from services.config import load_settings
    from services.container import Container

    container = Container(load_settings())
    await container.start()
    try:
        tracked = len(gc.get_objects())
        before = full_collections(args.repeat)
        gc.freeze()
        after = full_collections(args.repeat)
    finally:
        await container.aclose()
        delete_keys(redis_url, prefix)
    print(
        json.dumps(
            {
                "gc_full_collection_ms": {"before_freeze": before, "after_freeze": after},
                "tracked_objects_before_freeze": tracked,
            },
            indent=2,
        )
    )


if __name__ == "__main__":  # the language detector's worker process imports this module
    asyncio.run(main())
