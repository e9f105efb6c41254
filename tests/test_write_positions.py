"""Each user's last write position, in the process and in the real Redis: the newest wins whatever
order instances report in, and a position is forgotten once no usable replica can lack it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from conftest import REDIS_URL

from todo_svc.db.write_positions import InProcessWritePositions, RedisWritePositions, WritePositions

REMEMBER_SECONDS = 0.3


@pytest.fixture(params=["in-process", "redis"])
async def positions(request: pytest.FixtureRequest) -> AsyncIterator[WritePositions]:
    if request.param == "in-process":
        yield InProcessWritePositions(REMEMBER_SECONDS)
        return
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"todo-svc-test-{uuid.uuid4().hex[:12]}"
    try:
        yield RedisWritePositions(client, prefix, REMEMBER_SECONDS)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_the_newest_position_wins_whatever_order_it_is_reported_in(positions: WritePositions) -> None:
    assert await positions.last(1) is None
    await positions.record(1, 0x1_0000_0000)  # beyond 32 bits, as real WAL positions are
    await positions.record(1, 0x0_FFFF_FFFF)  # a slower instance reports an older write late
    await positions.record(2, 7)
    assert await positions.last(1) == 0x1_0000_0000
    assert await positions.last(2) == 7


async def test_a_position_is_forgotten_after_the_time_it_matters(positions: WritePositions) -> None:
    await positions.record(1, 10)
    await asyncio.sleep(REMEMBER_SECONDS + 0.1)
    await positions.record(2, 20)  # in process, writing also sweeps out what is forgotten
    assert await positions.last(1) is None
    assert await positions.last(2) == 20
