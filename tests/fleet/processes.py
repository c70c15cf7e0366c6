"""Instances started the way operators start them (`python -m app`, so SIGTERM takes the
rolling-restart path of app.GracefulServer), each on a port the test chooses."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from tests.browser.conftest import LiveServer, stop, wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["LiveServer", "launch_app", "stop", "terminate_and_wait"]


async def launch_app(env: dict[str, str], port: int, log_path: Path) -> LiveServer:
    """`python -m app` on 127.0.0.1:port, returned once it answers /api/v1/health."""
    env = {**env, "HOST": "127.0.0.1", "PORT": str(port)}
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    srv = LiveServer(f"http://127.0.0.1:{port}", env["REDIS_KEY_PREFIX"], process, log_path)
    try:
        await wait_until_healthy(srv)
    except BaseException:
        await stop(process)
        raise
    return srv


async def terminate_and_wait(srv: LiveServer, timeout: float = 30) -> int:
    """SIGTERM (a rolling restart's stop) and the exit status."""
    srv.process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(srv.process.wait(), timeout)
