"""Where each user's last write ended in the primary's WAL: the position their next reads must see.

A replica is used only while it holds at least what the primary had `REPLICA_MAX_LAG_SECONDS`
ago, so a position older than that (and the replicas' check period) is seen by every replica
that may be used: positions are forgotten after `remember_seconds`, and memory stays bounded by
the users who wrote recently.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as redis

# Positions as 16 hex digits compare as strings in the same order as the numbers they are.
_RECORD_SCRIPT = """
local known = redis.call('GET', KEYS[1])
if known and known >= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class WritePositions(Protocol):
    async def last(self, user_id: int) -> int | None:
        """The user's latest recorded write position, if they wrote recently."""

    async def record(self, user_id: int, position: int) -> None:
        """Remember a write; a position older than the one remembered changes nothing."""


class InProcessWritePositions:
    """Positions in this process: enough for one instance of one worker."""

    def __init__(self, remember_seconds: float) -> None:
        self._remember = remember_seconds
        self._positions: OrderedDict[int, tuple[int, float]] = OrderedDict()  # by time of writing

    async def last(self, user_id: int) -> int | None:
        known = self._positions.get(user_id)
        return known[0] if known is not None and known[1] > time.monotonic() else None

    async def record(self, user_id: int, position: int) -> None:
        now = time.monotonic()
        known = self._positions.pop(user_id, None)
        self._positions[user_id] = (max(position, known[0]) if known else position, now + self._remember)
        while next(iter(self._positions.values()))[1] <= now:  # the one just written is not
            self._positions.popitem(last=False)


class RedisWritePositions:
    """Positions in Redis, shared by every instance: a write on one is honoured by the others."""

    def __init__(self, client: redis.Redis, key_prefix: str, remember_seconds: float) -> None:
        self._client = client
        self._prefix = f"{key_prefix}:wrote:"
        self._remember_ms = int(remember_seconds * 1000)

    async def last(self, user_id: int) -> int | None:
        known = await self._client.get(f"{self._prefix}{user_id}")
        return int(known, 16) if known is not None else None

    async def record(self, user_id: int, position: int) -> None:
        key = f"{self._prefix}{user_id}"
        await self._client.eval(_RECORD_SCRIPT, 1, key, f"{position:016x}", self._remember_ms)
