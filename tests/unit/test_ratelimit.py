"""The limiter: limits, windows, decisions, hits sent to Redis together, and an unreachable store."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from conftest import REDIS_URL

from todo_svc.core import ratelimit
from todo_svc.core.ratelimit import Decision, Limit, MemoryWindows, RateLimiter, RedisWindows
from todo_svc.core.redis_client import connect_redis


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ratelimit.time, "monotonic", fake)
    return fake


async def counted(limiter: RateLimiter, family: str, client: str) -> Decision:
    decision = await limiter.hit(family, client)
    assert decision is not None
    return decision


@pytest.mark.parametrize(
    ("text", "count", "seconds"),
    [
        ("10/minute", 10, 60),
        ("300/minute", 300, 60),
        ("5/10seconds", 5, 10),
        (" 1000 / hour ", 1000, 3600),
        ("2/second", 2, 1),
        ("50000/day", 50000, 86400),
        ("3/2minutes", 3, 120),
    ],
)
def test_limits_are_read_from_text(text: str, count: int, seconds: int) -> None:
    assert Limit.parse(text) == Limit(count=count, period_seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "10", "0/minute", "10/0seconds", "10/fortnight", "-1/minute", "ten/minute"]
)
def test_malformed_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="10/minute"):
        Limit.parse(text)


async def test_a_window_allows_the_limit_then_refuses_until_it_closes(clock: Clock) -> None:
    limiter = RateLimiter({"auth": Limit(3, 60)}, MemoryWindows())
    decisions = [await counted(limiter, "auth", "10.0.0.1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert {(d.limit, d.reset_seconds) for d in decisions} == {(3, 60)}

    clock.now += 45.5
    refused = await counted(limiter, "auth", "10.0.0.1")
    assert (refused.allowed, refused.reset_seconds) == (False, 15)  # rounded up

    clock.now += 15
    fresh = await counted(limiter, "auth", "10.0.0.1")
    assert (fresh.allowed, fresh.remaining, fresh.reset_seconds) == (True, 2, 60)


async def test_clients_and_families_count_apart(clock: Clock) -> None:
    store = MemoryWindows()
    limiter = RateLimiter({"auth": Limit(1, 60), "tasks": Limit(1, 60)}, store)
    assert (await counted(limiter, "auth", "7")).allowed
    assert (await counted(limiter, "auth", "8")).allowed
    assert (await counted(limiter, "tasks", "7")).allowed
    assert not (await counted(limiter, "auth", "7")).allowed


async def test_closed_windows_are_swept_so_memory_stays_bounded(clock: Clock) -> None:
    store = MemoryWindows()
    for client in range(1000):
        await store.hit(f"auth:{client}", 10)
    assert len(store._windows) == 1000
    clock.now += MemoryWindows.SWEEP_EVERY_SECONDS
    await store.hit("auth:late", 10)
    assert list(store._windows) == ["auth:late"]


async def test_an_unreachable_redis_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    client = connect_redis("redis://127.0.0.1:1/0")
    limiter = RateLimiter({"auth": Limit(1, 60)}, RedisWindows(client, "todo-svc-test"))
    try:
        assert [await limiter.hit("auth", "10.0.0.1") for _ in range(3)] == [None, None, None]
    finally:
        await client.aclose()
    warnings = [r for r in caplog.records if "rate limit store unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per request


async def test_hits_sent_together_each_get_their_own_answer() -> None:
    """Simultaneous hits share one pipeline; every key still counts on its own, exactly."""
    client = connect_redis(REDIS_URL)
    prefix = f"todo-svc-test-{uuid.uuid4().hex[:12]}"
    try:
        store = RedisWindows(client, prefix)
        answers = await asyncio.gather(*(store.hit(f"auth:{n % 2}", 60) for n in range(20)))
        assert sorted(count for count, _ in answers[0::2]) == list(range(1, 11))
        assert sorted(count for count, _ in answers[1::2]) == list(range(1, 11))
        assert all(0 < seconds_left <= 60 for _, seconds_left in answers)
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        await client.delete(*keys)
        await client.aclose()


async def test_simultaneous_hits_on_an_unreachable_redis_all_go_through() -> None:
    client = connect_redis("redis://127.0.0.1:1/0")
    limiter = RateLimiter({"auth": Limit(1, 60)}, RedisWindows(client, "todo-svc-test"))
    try:
        async with asyncio.timeout(5):
            decisions = await asyncio.gather(*(limiter.hit("auth", f"10.0.0.{n}") for n in range(10)))
    finally:
        await client.aclose()
    assert decisions == [None] * 10
