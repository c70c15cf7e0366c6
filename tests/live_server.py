"""A server in its own process, started the way operators start it, on a port of its own,
returned once it answers /api/v1/health: the browser, fleet and hardening tests share it."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 90.0

# `python -m app` (app.GracefulServer: SIGTERM takes the rolling-restart path; HOST and PORT
# from the environment) or plain uvicorn with the app factory.
APP = (sys.executable, "-m", "app")
UVICORN = (
    sys.executable,
    "-m",
    "uvicorn",
    "app:create_app",
    "--factory",
    "--host",
    "127.0.0.1",
    # A long-poll the browser abandoned holds a plain uvicorn shutdown for ~25 s.
    "--timeout-graceful-shutdown",
    "5",
)


@dataclass
class LiveServer:
    url: str
    prefix: str
    process: asyncio.subprocess.Process
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


async def wait_until_healthy(srv: LiveServer) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if srv.process.returncode is not None:
                raise RuntimeError(
                    f"the server exited with {srv.process.returncode} during start-up:\n"
                    f"{srv.log_tail()}"
                )
            try:
                if (await client.get(srv.url + "/api/v1/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if loop.time() > deadline:
                raise RuntimeError(f"the server did not answer /api/v1/health:\n{srv.log_tail()}")
            await asyncio.sleep(0.1)


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 15)
    except TimeoutError:
        process.kill()
        await process.wait()


async def start_server(
    env: dict[str, str],
    log_path: Path,
    *,
    port: int | None = None,
    command: tuple[str, ...] = UVICORN,
    append_log: bool = False,
) -> LiveServer:
    """`command` on 127.0.0.1:port (a free one by default) with `env`, its output in
    `log_path`; returned once healthy, stopped if it never gets there."""
    port = port or free_port()
    if command == APP:
        env = {**env, "HOST": "127.0.0.1", "PORT": str(port)}
        argv = list(command)
    else:
        argv = [*command, "--port", str(port)]
    with log_path.open("ab" if append_log else "wb") as log:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    srv = LiveServer(f"http://127.0.0.1:{port}", env["REDIS_KEY_PREFIX"], process, log_path)
    try:
        await wait_until_healthy(srv)
    except BaseException:
        await stop(process)
        raise
    return srv
