"""Instances started the way operators start them (`python -m app`, so SIGTERM takes the
rolling-restart path of app.GracefulServer), each on a port the test chooses."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.live_server import APP, LiveServer, start_server, stop

__all__ = ["LiveServer", "launch_app", "stop", "terminate_and_wait"]


async def launch_app(env: dict[str, str], port: int, log_path: Path) -> LiveServer:
    """`python -m app` on 127.0.0.1:port, returned once it answers /api/v1/health (a
    restarted instance appends to its predecessor's log)."""
    return await start_server(env, log_path, port=port, command=APP, append_log=True)


async def terminate_and_wait(srv: LiveServer, timeout: float = 30) -> int:
    """SIGTERM (a rolling restart's stop) and the exit status."""
    srv.process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(srv.process.wait(), timeout)
