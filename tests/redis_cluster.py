"""Throwaway Redis topologies for tests, beside tests/redis_server.py's single server:

- a 3-master Redis Cluster on one machine (`redis-server --cluster-enabled yes` x3, joined
  as `redis-cli --cluster create ... --cluster-replicas 0` joins them), ready once every node
  says `cluster_state:ok`;
- a Sentinel setup: one master, one replica, one sentinel (`redis-server --sentinel` with a
  generated config) watching service `mymaster` with quorum 1 and short timeouts, so a
  `SENTINEL FAILOVER` completes within seconds.

Each lives in its own temporary directory and is stopped by its owner (tests/conftest.py
stops the session's cluster at the end of the session)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.redis_server import RedisServer, start_redis_server

START_TIMEOUT = 20.0
SERVICE = "mymaster"


def _cli(port: int, *args: str, timeout: float = 10) -> str:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return out.stdout + out.stderr


def cluster_ports(count: int) -> list[int]:
    """Free ports below 55535 whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    holders: list[socket.socket] = []
    try:
        while len(ports) < count:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            holders.append(s)
            if port >= 55535 or port in ports:
                continue
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            ports.append(port)
    finally:
        for s in holders:
            s.close()
    return ports


def _spawn(workdir: Path, *options: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: the tests start their own")
    workdir.mkdir(parents=True, exist_ok=True)
    # fmt: off
    base = [
        "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "", "--appendonly", "no",
        "--daemonize", "no", "--logfile", "redis.log",
    ]
    # fmt: on
    return subprocess.Popen(
        [binary, *options, *base], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _wait(check: object, what: str, timeout: float = START_TIMEOUT) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready within {timeout} s")
        time.sleep(0.05)


@dataclass
class RedisCluster:
    """Three masters; `url` names any node (the app's REDIS_CLUSTER=true finds the rest)."""

    ports: list[int]
    processes: list[subprocess.Popen[bytes]]
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    @property
    def urls(self) -> str:
        """Every node, as a comma list (REDIS_URL with REDIS_CLUSTER=true)."""
        return ",".join(f"redis://127.0.0.1:{p}/0" for p in self.ports)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


SLOTS = 16384


def _join(ports: list[int]) -> None:
    """What `redis-cli --cluster create --cluster-replicas 0` does, without its one-second
    polls: an even share of the slots and its own config epoch for each master, then every
    node meets the first (gossip introduces the rest)."""
    for i, port in enumerate(ports):
        first, last = SLOTS * i // len(ports), SLOTS * (i + 1) // len(ports) - 1
        for command in (
            ("cluster", "addslotsrange", str(first), str(last)),
            ("cluster", "set-config-epoch", str(i + 1)),
        ):
            if "OK" not in (reply := _cli(port, *command)):
                raise RuntimeError(f"{' '.join(command)} on {port}: {reply}")
    for port in ports[1:]:
        if "OK" not in (reply := _cli(ports[0], "cluster", "meet", "127.0.0.1", str(port))):
            raise RuntimeError(f"cluster meet {port}: {reply}")


def start_cluster(masters: int = 3) -> RedisCluster:
    root = Path(tempfile.mkdtemp(prefix="supportbot-test-cluster-"))
    ports = cluster_ports(masters)
    processes = [
        _spawn(
            root / str(port),
            "--port",
            str(port),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        )
        for port in ports
    ]
    cluster = RedisCluster(ports, processes, root)
    try:
        for port in ports:
            _wait(lambda port=port: "PONG" in _cli(port, "ping"), f"cluster node {port}")
        _join(ports)
        for port in ports:
            _wait(
                lambda port=port: "cluster_state:ok" in _cli(port, "cluster", "info"),
                f"cluster state on {port}",
            )
    except BaseException:
        cluster.stop()
        raise
    return cluster


@dataclass
class SentinelSetup:
    """One master, one replica of it, one sentinel watching them as `mymaster`."""

    master: RedisServer
    replica: RedisServer
    sentinel_port: int
    sentinel: subprocess.Popen[bytes]
    directory: Path
    _servers: list[RedisServer] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        """REDIS_URL for the app (python-socketio's form: sentinels/db/service)."""
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/0/{SERVICE}"

    def master_port(self) -> int:
        reply = _cli(self.sentinel_port, "sentinel", "get-master-addr-by-name", SERVICE)
        return int(reply.split()[1])

    def failover(self) -> int:
        """Promote the replica (SENTINEL FAILOVER) and return the new master's port once the
        sentinel names it and it accepts writes."""
        before = self.master_port()
        reply = _cli(self.sentinel_port, "sentinel", "failover", SERVICE)
        if "OK" not in reply:
            raise RuntimeError(f"SENTINEL FAILOVER refused: {reply}")
        _wait(lambda: self.master_port() != before, "sentinel failover")
        after = self.master_port()
        _wait(lambda: "role:master" in _cli(after, "info", "replication"), "new master")
        return after

    def stop(self) -> None:
        if self.sentinel.poll() is None:
            self.sentinel.terminate()
            try:
                self.sentinel.wait(5)
            except subprocess.TimeoutExpired:
                self.sentinel.kill()
                self.sentinel.wait()
        for server in (self.master, self.replica):
            server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_sentinel() -> SentinelSetup:
    root = Path(tempfile.mkdtemp(prefix="supportbot-test-sentinel-"))
    master = start_redis_server()
    replica = start_redis_server()
    for server in (master, replica):  # either may be the master: sync at once, not after 5 s
        _cli(server.port, "config", "set", "repl-diskless-sync-delay", "0")
    _cli(replica.port, "replicaof", "127.0.0.1", str(master.port))
    _wait(
        lambda: "master_link_status:up" in _cli(replica.port, "info", "replication"),
        "replica link",
    )
    port = cluster_ports(1)[0]
    config = root / "sentinel.conf"
    config.write_text(
        f"port {port}\n"
        "bind 127.0.0.1\n"
        f"dir {root}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 1\n"
        f"sentinel known-replica {SERVICE} 127.0.0.1 {replica.port}\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 5000\n"
        f"sentinel parallel-syncs {SERVICE} 1\n"
    )
    binary = shutil.which("redis-server")
    assert binary is not None
    process = subprocess.Popen(
        [binary, str(config), "--sentinel", "--logfile", str(root / "sentinel.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    setup = SentinelSetup(master, replica, port, process, root)
    try:
        _wait(
            lambda: f"{replica.port}" in _cli(port, "sentinel", "replicas", SERVICE),
            "sentinel discovering the replica",
        )
    except BaseException:
        setup.stop()
        raise
    return setup
