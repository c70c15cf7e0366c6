"""Agent accounts, sign-in, tokens, the login throttle, presence and the add-agent CLI,
against the suite's real Redis. Argon2 runs with cheap parameters except in the CLI test."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from redis.asyncio import Redis

from services.agents import Agent, AgentService, Keys
from services.errors import (
    AgentExists,
    AgentNotFound,
    InvalidCredentials,
    InvalidPayload,
    TooManyAttempts,
    Unauthorized,
)
from services.store import now_ms
from tests.conftest import delete_prefix, free_port, on_cluster, redis_url, unique_prefix

KEY = b"k" * 32
PASSWORD = "correct horse"
ROOT = Path(__file__).resolve().parents[2]


class CountingHasher(PasswordHasher):
    """Cheap Argon2id that records where each verification ran."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**({"time_cost": 1, "memory_cost": 8, "parallelism": 1} | kwargs))
        self.verify_threads: list[threading.Thread] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verify_threads.append(threading.current_thread())
        return super().verify(hash, password)


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    value = unique_prefix("agents")
    yield value
    await delete_prefix(redis, value)


@pytest.fixture
def make(redis: Redis, prefix: str) -> Callable[..., AgentService]:
    """AgentService instances sharing one Redis and prefix (as several app instances do)."""

    def factory(**overrides: Any) -> AgentService:
        options: dict[str, Any] = {
            "signing_key": KEY,
            "token_ttl": 3600,
            "max_failures": 3,
            "window": 60,
            "hasher": CountingHasher(),
        }
        return AgentService(redis, prefix, **(options | overrides))

    return factory


@pytest.fixture
def agents(make: Callable[..., AgentService]) -> AgentService:
    return make()


async def sign_in(agents: AgentService, email: str, ip: str = "10.0.0.1") -> str:
    token, _, _ = await agents.login(email, PASSWORD, ip)
    return token


# --- accounts ------------------------------------------------------------------------------


async def test_create_get_and_list(agents: AgentService, redis: Redis, prefix: str) -> None:
    ann = await agents.create(" Ann@Example.COM ", "Ann", PASSWORD)
    bob = await agents.create("bob@example.com", "Bob", PASSWORD, role="admin")
    assert ann.email == "ann@example.com" and ann.role == "agent" and not ann.disabled
    assert bob.is_admin
    assert await agents.get(ann.id) == ann
    assert await agents.list() == [ann, bob]
    public = ann.public()
    assert set(public) == {"id", "name", "email", "role", "disabled", "createdAt"}
    assert str(public["createdAt"]).endswith("Z")
    stored = await redis.hget(Keys(prefix).agent(ann.id), "passwordHash")
    assert stored is not None and stored.startswith(b"$argon2id$")
    assert PASSWORD.encode() not in stored
    assert await redis.hget(Keys(prefix).by_email, "ann@example.com") == ann.id.encode()


@pytest.mark.parametrize(
    ("email", "name", "password", "role"),
    [
        ("a@example.com", "A", "short", "agent"),
        ("a@example.com", "A", PASSWORD, "owner"),
        ("not-an-email", "A", PASSWORD, "agent"),
        ("a@example.com", "  ", PASSWORD, "agent"),
    ],
)
async def test_create_refuses_invalid_input(
    agents: AgentService, email: str, name: str, password: str, role: str
) -> None:
    with pytest.raises(InvalidPayload):
        await agents.create(email, name, password, role=role)
    assert await agents.list() == []


async def test_an_email_has_one_account(agents: AgentService) -> None:
    await agents.create("ann@example.com", "Ann", PASSWORD)
    with pytest.raises(AgentExists):
        await agents.create("ANN@example.com", "Other Ann", PASSWORD)
    assert len(await agents.list()) == 1


async def test_ten_concurrent_creates_of_one_email_one_wins(agents: AgentService) -> None:
    results = await asyncio.gather(
        *(agents.create("same@example.com", f"N{i}", PASSWORD) for i in range(10)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Agent)]
    assert len(winners) == 1
    assert all(isinstance(r, AgentExists) for r in results if r not in winners)
    assert await agents.list() == winners


async def test_ensure_admin_creates_once_and_never_logs_the_password(
    agents: AgentService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = await agents.ensure_admin("root@example.com", "admin-secret-1")
    assert admin is not None and admin.role == "admin" and admin.name == "Administrator"
    assert await agents.ensure_admin("ROOT@example.com", "another-pass") is None
    await agents.create("ann@example.com", "Ann", PASSWORD)
    assert await agents.ensure_admin("ann@example.com", "admin-secret-1") is None
    assert (await agents.get(admin.id)).role == "admin"
    roles = {a.email: a.role for a in await agents.list()}
    assert roles == {"root@example.com": "admin", "ann@example.com": "agent"}
    assert "admin-secret-1" not in caplog.text
    await agents.login("root@example.com", "admin-secret-1", "10.0.0.1")


async def test_unknown_agents_are_not_found(agents: AgentService) -> None:
    with pytest.raises(AgentNotFound):
        await agents.get("nope")
    with pytest.raises(AgentNotFound):
        await agents.set_disabled("nope", True)
    with pytest.raises(AgentNotFound):
        await agents.reset_password("nope", PASSWORD)
    with pytest.raises(AgentNotFound):
        await agents.set_presence("nope", "away")


# --- sign-in -------------------------------------------------------------------------------


async def test_login_returns_a_token_that_authenticates(agents: AgentService) -> None:
    ann = await agents.create("ann@example.com", "Ann", PASSWORD)
    before = now_ms()
    token, expires_at, agent = await agents.login("ANN@example.com ", PASSWORD, "10.0.0.1")
    assert agent == ann
    assert before + 3_600_000 <= expires_at <= now_ms() + 3_600_000
    assert await agents.authenticate(token) == ann


async def test_wrong_password_unknown_email_and_disabled_look_the_same(
    agents: AgentService,
) -> None:
    ann = await agents.create("ann@example.com", "Ann", PASSWORD)
    hasher = agents.passwords.hasher
    assert isinstance(hasher, CountingHasher)
    details = []
    for email, password, ip in [
        ("ann@example.com", "wrong password", "10.0.0.1"),
        ("nobody@example.com", PASSWORD, "10.0.0.2"),
    ]:
        hasher.verify_threads.clear()
        with pytest.raises(InvalidCredentials) as err:
            await agents.login(email, password, ip)
        details.append(err.value.detail)
        # one Argon2 verification each, even for an unknown e-mail, never on the event loop
        assert len(hasher.verify_threads) == 1
        assert hasher.verify_threads[0] is not threading.main_thread()
    await agents.set_disabled(ann.id, True)
    with pytest.raises(InvalidCredentials) as err:
        await agents.login("ann@example.com", PASSWORD, "10.0.0.3")
    details.append(err.value.detail)
    assert len(set(details)) == 1


async def test_login_rehashes_when_the_parameters_changed(
    make: Callable[..., AgentService], redis: Redis, prefix: str
) -> None:
    old = make()
    ann = await old.create("ann@example.com", "Ann", PASSWORD)
    key = Keys(prefix).agent(ann.id)
    first = await redis.hget(key, "passwordHash")
    assert first is not None and b"m=8," in first
    new = make(hasher=CountingHasher(memory_cost=16))
    await new.login("ann@example.com", PASSWORD, "10.0.0.1")
    second = await redis.hget(key, "passwordHash")
    assert second is not None and b"m=16," in second
    await new.login("ann@example.com", PASSWORD, "10.0.0.1")
    assert await redis.hget(key, "passwordHash") == second


# --- throttle ------------------------------------------------------------------------------


async def test_throttle_by_account_before_checking_the_password(agents: AgentService) -> None:
    await agents.create("ann@example.com", "Ann", PASSWORD)
    for i in range(3):
        with pytest.raises(InvalidCredentials):
            await agents.login("ann@example.com", "wrong password", f"10.0.1.{i}")
    hasher = agents.passwords.hasher
    assert isinstance(hasher, CountingHasher)
    hasher.verify_threads.clear()
    with pytest.raises(TooManyAttempts) as err:
        await agents.login("Ann@example.com", PASSWORD, "10.0.1.99")
    assert 0 < err.value.retry_after <= 60
    assert err.value.headers == {"Retry-After": str(err.value.retry_after)}
    assert hasher.verify_threads == []
    # other accounts are untouched
    await agents.create("bob@example.com", "Bob", PASSWORD)
    await agents.login("bob@example.com", PASSWORD, "10.0.1.100")


async def test_throttle_by_address(agents: AgentService) -> None:
    await agents.create("ann@example.com", "Ann", PASSWORD)
    for i in range(3):
        with pytest.raises(InvalidCredentials):
            await agents.login(f"guess{i}@example.com", PASSWORD, "10.0.2.1")
    with pytest.raises(TooManyAttempts) as err:
        await agents.login("ann@example.com", PASSWORD, "10.0.2.1")
    assert 0 < err.value.retry_after <= 60
    await agents.login("ann@example.com", PASSWORD, "10.0.2.2")


async def test_a_success_clears_the_account_counter(agents: AgentService) -> None:
    await agents.create("ann@example.com", "Ann", PASSWORD)
    ips = iter(f"10.0.3.{i}" for i in range(20))
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await agents.login("ann@example.com", "wrong password", next(ips))
    await agents.login("ann@example.com", PASSWORD, next(ips))
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await agents.login("ann@example.com", "wrong password", next(ips))
    with pytest.raises(TooManyAttempts):
        await agents.login("ann@example.com", PASSWORD, next(ips))


async def test_parallel_guesses_cannot_slip_past_the_limit(agents: AgentService) -> None:
    await agents.create("ann@example.com", "Ann", PASSWORD)
    results = await asyncio.gather(
        *(agents.login("ann@example.com", f"guess {i}", f"10.0.4.{i}") for i in range(20)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, InvalidCredentials) for r in results) == 3
    assert sum(isinstance(r, TooManyAttempts) for r in results) == 17


async def test_the_throttle_lifts_when_the_window_ends(make: Callable[..., AgentService]) -> None:
    agents = make(window=1)
    await agents.create("ann@example.com", "Ann", PASSWORD)
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await agents.login("ann@example.com", "wrong password", "10.0.5.1")
    with pytest.raises(TooManyAttempts) as err:
        await agents.login("ann@example.com", PASSWORD, "10.0.5.1")
    assert err.value.retry_after == 1
    await asyncio.sleep(1.1)
    await agents.login("ann@example.com", PASSWORD, "10.0.5.1")


# --- tokens --------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_tampered_and_malformed_tokens_are_refused(
    agents: AgentService, make: Callable[..., AgentService]
) -> None:
    ann = await agents.create("ann@example.com", "Ann", PASSWORD)
    bob = await agents.create("bob@example.com", "Bob", PASSWORD, role="admin")
    token = await sign_in(agents, "ann@example.com")
    payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    as_bob = _b64(json.dumps(claims | {"sub": bob.id}).encode()) + "." + signature
    longer = _b64(json.dumps(claims | {"exp": claims["exp"] * 2}).encode()) + "." + signature
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    bad = [
        as_bob,
        longer,
        f"{payload}.{flipped}",
        f"{payload}.{signature}x",
        f"{payload}.",
        f".{signature}",
        f"{token}.{signature}",
        "",
        "not a token",
        "é.é",
        "x" * 5000,
    ]
    for candidate in bad:
        with pytest.raises(Unauthorized):
            await agents.authenticate(candidate)
    with pytest.raises(Unauthorized):
        await make(signing_key=b"another key").authenticate(token)
    assert await agents.authenticate(token) == ann


async def test_tokens_expire(make: Callable[..., AgentService], redis: Redis, prefix: str) -> None:
    agents = make(token_ttl=1)
    await agents.create("ann@example.com", "Ann", PASSWORD)
    token, expires_at, _ = await agents.login("ann@example.com", PASSWORD, "10.0.0.1")
    await agents.authenticate(token)
    allowed = [k async for k in redis.scan_iter(match=Keys(prefix).token_prefix + "*")]
    assert len(allowed) == 1 and 0 < await redis.pttl(allowed[0]) <= 1000
    await asyncio.sleep(max(0, expires_at - now_ms()) / 1000 + 0.05)
    with pytest.raises(Unauthorized, match="expired"):
        await agents.authenticate(token)


async def test_expiry_is_checked_before_redis(make: Callable[..., AgentService]) -> None:
    agents = make()
    await agents.create("ann@example.com", "Ann", PASSWORD)
    token = await sign_in(agents, "ann@example.com")
    later = make(clock=lambda: now_ms() + 3_601_000)
    with pytest.raises(Unauthorized, match="expired"):
        await later.authenticate(token)
    await agents.authenticate(token)  # still on the allowlist: the clock alone refused it


async def test_logout_revokes_only_that_token(agents: AgentService) -> None:
    await agents.create("ann@example.com", "Ann", PASSWORD)
    first = await sign_in(agents, "ann@example.com")
    second = await sign_in(agents, "ann@example.com")
    await agents.logout(first)
    with pytest.raises(Unauthorized, match="revoked"):
        await agents.authenticate(first)
    await agents.authenticate(second)
    await agents.logout(first)  # twice is fine
    with pytest.raises(Unauthorized):
        await agents.logout("forged.token")


async def test_disabling_revokes_every_token(agents: AgentService, redis: Redis) -> None:
    ann = await agents.create("ann@example.com", "Ann", PASSWORD)
    tokens = [await sign_in(agents, "ann@example.com") for _ in range(2)]
    disabled = await agents.set_disabled(ann.id, True)
    assert disabled.disabled and disabled.public()["disabled"] is True
    for token in tokens:
        with pytest.raises(Unauthorized):
            await agents.authenticate(token)
    enabled = await agents.set_disabled(ann.id, False)
    assert not enabled.disabled
    for token in tokens:  # enabling brings no old sign-in back
        with pytest.raises(Unauthorized):
            await agents.authenticate(token)
    await agents.authenticate(await sign_in(agents, "ann@example.com"))


async def test_a_password_reset_revokes_every_token(agents: AgentService) -> None:
    ann = await agents.create("ann@example.com", "Ann", PASSWORD)
    token = await sign_in(agents, "ann@example.com")
    with pytest.raises(InvalidPayload):
        await agents.reset_password(ann.id, "short")
    await agents.authenticate(token)
    assert await agents.reset_password(ann.id, "a new password") == ann
    with pytest.raises(Unauthorized):
        await agents.authenticate(token)
    with pytest.raises(InvalidCredentials):
        await agents.login("ann@example.com", PASSWORD, "10.0.0.1")
    await agents.login("ann@example.com", "a new password", "10.0.0.2")


async def test_a_deleted_agent_cannot_authenticate(
    agents: AgentService, redis: Redis, prefix: str
) -> None:
    ann = await agents.create("ann@example.com", "Ann", PASSWORD)
    token = await sign_in(agents, "ann@example.com")
    await redis.delete(Keys(prefix).agent(ann.id))
    with pytest.raises(Unauthorized):
        await agents.authenticate(token)


async def test_token_keys_expire_with_the_token(
    agents: AgentService, redis: Redis, prefix: str
) -> None:
    ann = await agents.create("ann@example.com", "Ann", PASSWORD)
    await sign_in(agents, "ann@example.com")
    ttl = await redis.ttl(Keys(prefix).tokens(ann.id))
    assert 3590 <= ttl <= 3600
    assert len(await redis.smembers(Keys(prefix).tokens(ann.id))) == 1


# --- presence ------------------------------------------------------------------------------


async def test_presence_is_shared_between_instances(make: Callable[..., AgentService]) -> None:
    one, two = make(), make()
    ann = await one.create("ann@example.com", "Ann", PASSWORD)
    bob = await one.create("bob@example.com", "Bob", PASSWORD)
    assert await two.online() == [] and await two.online_count() == 0

    assert await one.connected(ann.id, "s1") is True
    assert await two.online() == [{"id": ann.id, "name": "Ann", "presence": "online"}]
    assert await one.connected(ann.id, "s2") is False  # a second tab changes nothing
    assert await two.connected(bob.id, "s3") is True
    assert await one.online_count() == 2
    assert await one.online_ids() == {ann.id, bob.id}

    await two.set_presence(ann.id, "away")
    assert (await one.get(ann.id)).presence == "away"
    assert await one.online() == [
        {"id": ann.id, "name": "Ann", "presence": "away"},
        {"id": bob.id, "name": "Bob", "presence": "online"},
    ]
    with pytest.raises(InvalidPayload):
        await one.set_presence(ann.id, "busy")

    assert await one.disconnected(ann.id, "s1") is False
    assert await one.disconnected(ann.id, "s2") is True
    assert await one.disconnected(ann.id, "s2") is False
    assert await two.online() == [{"id": bob.id, "name": "Bob", "presence": "online"}]
    assert await one.connected(ann.id, "s4") is True  # back online, and no longer away
    assert (await two.get(ann.id)).presence == "online"


async def test_a_silent_instance_drops_out_after_the_presence_ttl(
    make: Callable[..., AgentService],
) -> None:
    alive, dying = make(presence_ttl=1), make(presence_ttl=1)
    ann = await alive.create("ann@example.com", "Ann", PASSWORD)
    bob = await alive.create("bob@example.com", "Bob", PASSWORD)
    assert await alive.connected(ann.id, "a1")
    assert await dying.connected(bob.id, "b1")
    for _ in range(5):  # the live instance refreshes every ~ttl/3; the other has died
        await asyncio.sleep(0.3)
        assert await alive.heartbeat([(ann.id, "a1")]) == []
    assert [a["id"] for a in await alive.online()] == [ann.id]
    assert await alive.online_count() == 1
    assert await dying.disconnected(bob.id, "b1") is False  # already gone: no change
    # a stalled instance that resumes refreshing brings its agent back
    assert await dying.heartbeat([(bob.id, "b1"), (bob.id, "b2")]) == [bob.id]
    assert await alive.online_count() == 2
    assert await dying.heartbeat([]) == []


async def test_disabled_and_deleted_agents_are_not_listed_online(
    agents: AgentService, redis: Redis, prefix: str
) -> None:
    ann = await agents.create("ann@example.com", "Ann", PASSWORD)
    bob = await agents.create("bob@example.com", "Bob", PASSWORD)
    await agents.connected(ann.id, "s1")
    await agents.connected(bob.id, "s2")
    await agents.set_disabled(ann.id, True)
    await redis.delete(Keys(prefix).agent(bob.id))
    assert await agents.online() == []


# --- CLI -----------------------------------------------------------------------------------


async def run_cli(env: dict[str, str], cwd: Path, stdin: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.agents",
        "add",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_adds_an_agent(
    agents: AgentService, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url(),  # the suite's Redis, wherever it runs (a cluster too)
        "REDIS_CLUSTER": str(on_cluster()).lower(),
        "REDIS_KEY_PREFIX": prefix,
    }
    secret = "cli password 1"
    args = ("--email", "Carol@Example.com", "--name", "Carol", "--role", "admin")
    code, out, err = await run_cli(env, tmp_path, secret + "\n", *args)
    assert code == 0, err
    carol = await agents.get(out.strip())
    assert (carol.email, carol.name, carol.role) == ("carol@example.com", "Carol", "admin")
    assert secret not in out + err
    await agents.login("carol@example.com", secret, "10.0.0.1")

    code, out, err = await run_cli(env, tmp_path, secret + "\n", *args)
    assert code == 1 and "already exists" in err and out == ""
    code, _, err = await run_cli(
        env, tmp_path, "short\n", "--email", "d@example.com", "--name", "D"
    )
    assert code == 1 and "at least 8" in err
    unreachable = env | {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    code, _, err = await run_cli(unreachable, tmp_path, secret + "\n", *args)
    assert code == 2 and "unreachable" in err
    assert [a.email for a in await agents.list()] == ["carol@example.com"]
