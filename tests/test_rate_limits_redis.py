"""Rate limits shared through the real Redis: two app instances, and two Granian workers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis
from conftest import REDIS_URL, empty_tables, make_settings
from servers import serving, until_every_worker_answered
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_svc.app import create_app
from todo_svc.settings import Settings

LOGIN = "/api/v1/auth/login"
WRONG_LOGIN = {"email": "ann@example.org", "password": "not the password"}


@pytest.fixture
async def key_prefix() -> AsyncIterator[str]:
    """A prefix of this test's own, so runs never share counters; its keys are deleted afterwards."""
    prefix = f"todo-svc-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]  # "-other" too
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


SettingsFor = Callable[..., Settings]


@pytest.fixture
async def settings_for(database_url: str, engine: AsyncEngine, key_prefix: str) -> AsyncIterator[SettingsFor]:
    """Settings for instances that share this test's counters in Redis; tables emptied afterwards."""

    def settings_with(**overrides: str) -> Settings:
        return make_settings(
            database_url, **{"redis_url": REDIS_URL, "redis_key_prefix": key_prefix, **overrides}
        )

    yield settings_with
    await empty_tables(engine)


@asynccontextmanager
async def running(*all_settings: Settings) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One app instance per settings, each its own app object with its own pools, on this event loop
    (so requests to several can truly overlap), with a client for each."""
    async with AsyncExitStack() as stack:
        clients = []
        for settings in all_settings:
            app = create_app(settings)
            await stack.enter_async_context(app.lifespan())
            transport = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            clients.append(await stack.enter_async_context(client))
        yield clients


async def test_two_instances_share_one_count(settings_for: SettingsFor) -> None:
    limits = settings_for(rate_limit_auth="4/minute")
    async with running(limits, limits) as (first, second):
        answers = [await (first, second)[n % 2].post(LOGIN, json=WRONG_LOGIN) for n in range(6)]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers[:4]] == ["3", "2", "1", "0"]
    assert 1 <= int(answers[4].headers["retry-after"]) <= 60


async def test_simultaneous_requests_on_two_instances_cannot_overshoot(settings_for: SettingsFor) -> None:
    limits = settings_for(rate_limit_auth="5/minute")
    async with running(limits, limits) as clients:
        answers = await asyncio.gather(*(clients[n % 2].post(LOGIN, json=WRONG_LOGIN) for n in range(16)))
    assert sorted(answer.status_code for answer in answers) == [401] * 5 + [429] * 11


async def test_counters_expire_with_their_window(settings_for: SettingsFor, key_prefix: str) -> None:
    store = redis.Redis.from_url(REDIS_URL)
    async with running(settings_for(rate_limit_auth="2/second")) as (client,):
        assert [(await client.post(LOGIN, json=WRONG_LOGIN)).status_code for _ in range(3)] == [401, 401, 429]
        try:
            keys = [key async for key in store.scan_iter(match=f"{key_prefix}:ratelimit:auth:*")]
            assert len(keys) == 1
            assert 0 < await store.pttl(keys[0]) <= 1000
            await asyncio.sleep(1.1)
            assert await store.exists(keys[0]) == 0
        finally:
            await store.aclose()
        assert (await client.post(LOGIN, json=WRONG_LOGIN)).status_code == 401


async def test_instances_configured_with_different_limits_count_apart(settings_for: SettingsFor) -> None:
    """A restart with a new limit must not apply it to counts made under the old one (nor the reverse)."""
    strict, lenient = settings_for(rate_limit_auth="1/minute"), settings_for(rate_limit_auth="3/minute")
    async with running(strict, lenient) as (strict_client, lenient_client):
        assert (await strict_client.post(LOGIN, json=WRONG_LOGIN)).status_code == 401
        lenient_answers = [await lenient_client.post(LOGIN, json=WRONG_LOGIN) for _ in range(4)]
        assert (await strict_client.post(LOGIN, json=WRONG_LOGIN)).status_code == 429
    assert [answer.status_code for answer in lenient_answers] == [401, 401, 401, 429]
    assert [answer.headers["ratelimit-limit"] for answer in lenient_answers] == ["3"] * 4


async def test_deployments_with_different_prefixes_count_apart(settings_for: SettingsFor) -> None:
    ours = settings_for(rate_limit_auth="1/minute")
    theirs = settings_for(rate_limit_auth="1/minute", redis_key_prefix=f"{ours.redis_key_prefix}-other")
    async with running(ours, theirs) as (our_client, their_client):
        assert (await our_client.post(LOGIN, json=WRONG_LOGIN)).status_code == 401
        assert (await their_client.post(LOGIN, json=WRONG_LOGIN)).status_code == 401
        assert (await our_client.post(LOGIN, json=WRONG_LOGIN)).status_code == 429


async def test_two_granian_workers_share_the_limit(
    database_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """The real server with two worker processes: the limit holds for the whole server."""
    limits = {
        "WORKERS": "2",
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": key_prefix,
        "RATE_LIMIT_AUTH": "6/minute",
    }
    async with serving(database_url, tmp_path / "server.log", **limits) as server:
        # A new connection each time, until both workers took some (15 at least): with a count per
        # worker, more than 6 would be let through.
        answers = await until_every_worker_answered(server, 2, "POST", LOGIN, at_least=15, json=WRONG_LOGIN)
    statuses = [answer.status_code for answer in answers]
    assert sorted(statuses) == [401] * 6 + [429] * (len(statuses) - 6)
