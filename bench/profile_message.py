"""Where the REST message path spends its CPU: the real app (production settings, the
embedded responder) on uvicorn in this process, driven by an httpx client, under cProfile.
Prints the functions with the most cumulative and own time (the client's share included;
read the server's lines).

    python -m bench.profile_message [--sessions 10] [--messages 20] [--top 35] [--save FILE]
        [--target supportbot|samework|baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
from typing import Any

import uvicorn

from bench.rest_load import bench_env, delete_keys, drive, free_port


def build(target: str) -> Any:
    """The app to profile: the real one, or a benchmark baseline (bench/rest_load.py)."""
    if target == "samework":
        from bench.samework_app import app as samework

        return samework
    if target == "baseline":
        from bench.baseline_app import app as baseline

        return baseline
    from app import create_app
    from services.config import load_settings

    return create_app(load_settings())


async def run(sessions: int, messages: int, profile: cProfile.Profile, target: str) -> None:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build(target), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
        await asyncio.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    await drive(url, 2, 3)  # warm-up
    profile.enable()
    result = await drive(url, sessions, messages)
    profile.disable()
    print(result)
    server.should_exit = True
    await task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--target", choices=("supportbot", "samework", "baseline"))
    parser.add_argument("--save", help="also write the raw profile here (for pstats, snakeviz)")
    args = parser.parse_args()
    redis_url, prefix, env = bench_env()
    os.environ.update(env)
    profile = cProfile.Profile()
    asyncio.run(run(args.sessions, args.messages, profile, args.target or "supportbot"))
    delete_keys(redis_url, prefix)
    if args.save:
        profile.dump_stats(args.save)
    stats = pstats.Stats(profile).strip_dirs()
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
