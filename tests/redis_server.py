"""Throwaway `redis-server` processes for tests: a free port on 127.0.0.1, a temporary
directory, nothing saved. The test session runs one of these (tests/conftest.py), so the
suite never touches a Redis the developer runs; a test that must take Redis away starts
its own."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """One redis-server process; `url` names database 0 on it."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path
    _owns_directory: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """Take the server away at once, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """Stop the server and remove its directory if this helper made it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_redis_server(directory: Path | None = None) -> RedisServer:
    """Start redis-server on a free port, in `directory` (a new temporary one by default),
    and return once it answers PING. Fails loudly when the binary is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: the tests start their own "
            "(apt-get install redis-server, or brew install redis)"
        )
    owns = directory is None
    workdir = Path(tempfile.mkdtemp(prefix="supportbot-test-redis-")) if owns else directory
    assert workdir is not None
    port = free_port()
    # fmt: off
    options = [
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
        "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "redis.log",
    ]
    # fmt: on
    process = subprocess.Popen(
        [binary, *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    server = RedisServer(process, port, workdir, owns)
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            log = workdir / "redis.log"
            output = log.read_text(errors="replace") if log.exists() else "(no log)"
            server.stop()
            raise RuntimeError(f"redis-server did not start on port {port}:\n{output}")
        time.sleep(0.05)
    return server
