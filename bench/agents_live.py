"""`make bench` (agent side): with C customer conversations `assigned` to A connected agents,
how long from a customer's message (socket) to the holding agent's socket, and from an
agent's reply (REST) to the customer's socket. Server in its own process, clients here.

    python -m bench.agents_live [--customers 200] [--agents 20] [--rounds 5] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
import uuid
from typing import Any

import httpx
import socketio

from bench.rest_load import bench_env, delete_keys, free_port, start, wait_ready

ADMIN = {"email": "bench-admin@example.com", "password": "bench-admin-pass"}


def summary(latencies: list[float]) -> dict[str, float]:
    latencies = sorted(latencies)
    return {
        "count": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "max_ms": round(latencies[-1], 2),
    }


async def run(url: str, customers: int, agents: int, rounds: int, rate: float) -> dict[str, Any]:
    sent: dict[str, float] = {}
    to_agent: list[float] = []
    to_customer: list[float] = []
    done = asyncio.Event()
    expected = customers * rounds * 2

    def arrived(text: str, bucket: list[float]) -> None:
        t0 = sent.pop(text, None)
        if t0 is not None:
            bucket.append((time.perf_counter() - t0) * 1000)
            if len(to_agent) + len(to_customer) >= expected:
                done.set()

    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as api:
        admin = (await api.post("/api/v1/agents/login", json=ADMIN)).json()["token"]
        tokens = []
        for i in range(agents):
            body = {
                "email": f"a{i}@bench.example",
                "name": f"Agent {i}",
                "password": "agent-pass-1",
            }
            await api.post(
                "/api/v1/agents", json=body, headers={"Authorization": f"Bearer {admin}"}
            )
            creds = {"email": body["email"], "password": body["password"]}
            login = await api.post("/api/v1/agents/login", json=creds)
            tokens.append(login.json()["token"])

        consoles = []
        for token in tokens:
            sio = socketio.AsyncClient(reconnection=False)
            sio.on(
                "message-received", lambda d: arrived(d["message"], to_agent), namespace="/agents"
            )
            await sio.connect(
                url, namespaces=["/agents"], auth={"token": token}, transports=["websocket"]
            )
            consoles.append(sio)

        pages = []
        sessions = []
        for i in range(customers):
            sid = (await api.post("/api/v1/chat/session", json={"userId": f"c{i}"})).json()[
                "sessionId"
            ]
            await api.post(
                "/api/v1/chat/message", json={"sessionId": sid, "message": "urgent: help"}
            )
            holder = tokens[i % agents]
            res = await api.post(
                f"/api/v1/agents/conversations/{sid}/claim",
                headers={"Authorization": f"Bearer {holder}"},
            )
            assert res.status_code == 200, res.text
            page = socketio.AsyncClient(reconnection=False)
            page.on(
                "message-received",
                lambda d: d.get("sender") == "agent" and arrived(d["message"], to_customer),
            )
            await page.connect(url, transports=["websocket"])
            await page.emit("join-chat", {"sessionId": sid})
            pages.append(page)
            sessions.append((sid, holder))
        await asyncio.sleep(1.0)  # every page has joined its room

        replies: list[asyncio.Future[httpx.Response]] = []
        gap = 1.0 / rate
        started = time.perf_counter()
        for r in range(rounds):
            for i, (sid, holder) in enumerate(sessions):
                text = f"customer {r}-{i} {uuid.uuid4().hex[:6]}"
                sent[text] = time.perf_counter()
                await pages[i].emit("send-message", {"sessionId": sid, "message": text})
                reply = f"agent {r}-{i} {uuid.uuid4().hex[:6]}"
                sent[reply] = time.perf_counter()
                replies.append(
                    asyncio.ensure_future(
                        api.post(
                            f"/api/v1/agents/conversations/{sid}/messages",
                            json={"message": reply},
                            headers={"Authorization": f"Bearer {holder}"},
                        )
                    )
                )
                await asyncio.sleep(gap)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 60)
        elapsed = time.perf_counter() - started
        failed = sum(res.status_code != 200 for res in await asyncio.gather(*replies))
        for client in consoles + pages:
            await client.disconnect()
    return {
        "customer_to_agent_socket": summary(to_agent),
        "agent_reply_to_customer_socket": summary(to_customer),
        "lost": len(sent),
        "failed_replies": failed,
        "messages_per_s": round(2 * customers * rounds / elapsed, 1),
        "load": {
            "customers_assigned": customers,
            "agents": agents,
            "rounds": rounds,
            "pace_per_s": rate,
        },
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=100.0, help="customer messages per second")
    args = parser.parse_args()
    redis_url, prefix, env = bench_env()
    env.update({"ADMIN_EMAIL": ADMIN["email"], "ADMIN_PASSWORD": ADMIN["password"]})
    port = free_port()
    proc = start("app:create_app", port, env)
    try:
        await wait_ready(f"http://127.0.0.1:{port}")
        result = await run(
            f"http://127.0.0.1:{port}", args.customers, args.agents, args.rounds, args.rate
        )
    finally:
        proc.terminate()
        proc.wait(10)
        delete_keys(redis_url, prefix)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
