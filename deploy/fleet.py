"""N instances of the app behind nginx on one Redis, on this machine (`make fleet N=2`).

The fleet test (tests/fleet/) starts the same thing through `start_fleet`: each instance is
`python -m app` (so SIGTERM takes the rolling-restart path) on a free port, and nginx runs
unprivileged with deploy/nginx.conf, copied verbatim into a temporary prefix beside the two
files it includes (the instances' ports, and its own listen port).

    python -m deploy.fleet --instances 2 --port 8080      # Ctrl-C stops everything
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
START_TIMEOUT = 180.0  # a busy 2-core machine starts three instances slowly
STOP_TIMEOUT = 20.0  # above SHUTDOWN_GRACE's default


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Instance:
    port: int
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """As nginx names it in $upstream_addr."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app",
                cwd=ROOT,
                env={**self.env, "HOST": "127.0.0.1", "PORT": str(self.port)},
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: see stop()
            )
        await wait_healthy(self.url, self.process, self.log_path)

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signum)

    async def stop(self) -> None:
        """SIGTERM (the rolling-restart stop), SIGKILL if it outlives STOP_TIMEOUT; then
        whatever is left of its process group (a killed instance's language-detector worker
        outlives it)."""
        await stop_process(self.process)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)


@dataclass
class Fleet:
    prefix_dir: Path
    port: int
    instances: list[Instance]
    nginx: asyncio.subprocess.Process | None = None
    owned_dir: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.prefix_dir / "access.log"

    async def stop(self) -> None:
        await asyncio.gather(*(instance.stop() for instance in self.instances))
        await stop_process(self.nginx)
        if self.owned_dir:
            shutil.rmtree(self.prefix_dir, ignore_errors=True)


async def stop_process(process: asyncio.subprocess.Process | None) -> None:
    if process is None or process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()


async def wait_healthy(url: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
        while True:
            if process.returncode is not None:
                tail = (await asyncio.to_thread(log_path.read_text, errors="replace"))[-3000:]
                raise RuntimeError(f"{url} exited with {process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url + "/health")).status_code == 200:
                    return
            if loop.time() > deadline:
                raise RuntimeError(f"{url} did not answer /health in {START_TIMEOUT} s")
            await asyncio.sleep(0.2)


def render_nginx(prefix_dir: Path, port: int, upstreams: list[str]) -> Path:
    """deploy/nginx.conf, verbatim, with its two includes for these ports; the config path."""
    (prefix_dir / "temp").mkdir(parents=True, exist_ok=True)
    conf = prefix_dir / "nginx.conf"
    shutil.copyfile(NGINX_CONF, conf)
    (prefix_dir / "upstreams.conf").write_text(
        "".join(f"server {address} max_fails=1 fail_timeout=5s;\n" for address in upstreams)
    )
    (prefix_dir / "listen.conf").write_text(f"listen 127.0.0.1:{port};\n")
    return conf


async def start_nginx(
    prefix_dir: Path, port: int, upstreams: list[str]
) -> asyncio.subprocess.Process:
    conf = render_nginx(prefix_dir, port, upstreams)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with (prefix_dir / "nginx.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            nginx,
            "-e",
            "stderr",
            "-p",
            str(prefix_dir),
            "-c",
            str(conf),
            "-g",
            "daemon off;",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    await wait_healthy(f"http://127.0.0.1:{port}", process, prefix_dir / "nginx.log")
    return process


async def start_fleet(
    env: Mapping[str, str], instances: int, port: int = 0, prefix_dir: Path | None = None
) -> Fleet:
    """`instances` apps with this environment (one Redis, one key prefix, one encryption
    key), then nginx in front, on `port` (0: a free one). Stops what started on failure."""
    owned = prefix_dir is None
    prefix_dir = prefix_dir or Path(tempfile.mkdtemp(prefix="supportbot-fleet-"))
    prefix_dir.mkdir(parents=True, exist_ok=True)
    env = {**env, "TRUSTED_PROXIES": "127.0.0.1"}  # nginx's X-Forwarded-For is believed
    fleet = Fleet(
        prefix_dir,
        port or free_port(),
        [Instance(free_port(), env, prefix_dir / f"app{i + 1}.log") for i in range(instances)],
        owned_dir=owned,
    )
    try:
        await asyncio.gather(*(instance.start() for instance in fleet.instances))
        fleet.nginx = await start_nginx(
            prefix_dir, fleet.port, [instance.address for instance in fleet.instances]
        )
    except BaseException:
        await fleet.stop()
        raise
    return fleet


async def serve(instances: int, port: int) -> None:
    fleet = await start_fleet(dict(os.environ), instances, port)
    print(f"fleet: {fleet.url} -> " + ", ".join(i.url for i in fleet.instances), flush=True)
    print(f"fleet: nginx prefix, logs and config in {fleet.prefix_dir}", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    await fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    asyncio.run(serve(args.instances, args.port))


if __name__ == "__main__":
    main()
