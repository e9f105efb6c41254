"""Fixed-window request limits per route family, counted in this process or in Redis.

A family (`auth`, `login`, `tasks`, …) has one limit, such as 10 per minute,
and a counter per client within it. A client's window opens with its first
request and lasts the family's period; the counter key names the family and
its limit, so families never share a count, and neither do instances that
share a Redis but were configured with different limits (each would otherwise
enforce its own number on the other's counts).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as redis

logger = logging.getLogger(__name__)

PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
LIMIT_PATTERN = r"^\s*([1-9]\d*)\s*/\s*([1-9]\d*)?\s*(second|minute|hour|day)s?\s*$"
_LIMIT = re.compile(LIMIT_PATTERN)


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    period_seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        """`10/minute`, `300/minute`, `5/10seconds`, `1000/hour`."""
        match = _LIMIT.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a limit such as 10/minute")
        return cls(count=int(match[1]), period_seconds=int(match[2] or 1) * PERIOD_SECONDS[match[3]])


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one counted request: whether it may go on, and where its window stands."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window closes, rounded up


class WindowStore(Protocol):
    async def hit(self, key: str, period_seconds: int) -> tuple[int, float]:
        """Count one request for `key`: the count in its window and the seconds the window has left."""


class MemoryWindows:
    """Windows in this process's memory; expired ones are swept once a minute."""

    SWEEP_EVERY_SECONDS = 60.0

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}
        self._next_sweep = 0.0

    async def hit(self, key: str, period_seconds: int) -> tuple[int, float]:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._windows = {k: window for k, window in self._windows.items() if window[1] > now}
            self._next_sweep = now + self.SWEEP_EVERY_SECONDS
        count, closes_at = self._windows.get(key, (0, 0.0))
        if closes_at <= now:
            count, closes_at = 0, now + period_seconds
        self._windows[key] = (count + 1, closes_at)
        return count + 1, closes_at - now


# Atomic on the server: count, open the window on the first hit
# (and on a key that somehow lost its expiry), report the count and what is left.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RedisWindows:
    """Windows in Redis, shared by every worker and instance that uses the same server and prefix.

    The hits that arrive during one turn of the event loop travel together: one
    pipeline, one round trip, each hit still its own atomic script call. Under
    load that divides the client's cost per hit, the largest part of it, by the
    batch size.
    """

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._client = client
        self._prefix = f"{key_prefix}:ratelimit:"
        self._waiting: list[tuple[str, int, asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()  # referenced until done

    async def hit(self, key: str, period_seconds: int) -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        if not self._waiting:  # the first hit of this turn sends them all once the turn is over
            sending = loop.create_task(self._send())
            self._sending.add(sending)
            sending.add_done_callback(self._sending.discard)
        answer: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((self._prefix + key, period_seconds * 1000, answer))
        count, ttl_ms = await answer
        return int(count), int(ttl_ms) / 1000

    async def _send(self) -> None:
        batch, self._waiting = self._waiting, []
        results: list[Any] = []
        try:
            async with self._client.pipeline(transaction=False) as pipeline:
                for key, period_ms, _ in batch:
                    pipeline.eval(_HIT_SCRIPT, 1, key, period_ms)  # Redis keeps the compiled script
                results = await pipeline.execute(raise_on_error=False)
        except (redis.RedisError, OSError) as exc:
            results = [exc] * len(batch)
        finally:  # every hit gets an answer, even when this is cancelled: none waits forever
            for index, (_, _, answer) in enumerate(batch):
                result = results[index] if index < len(results) else redis.ConnectionError("no answer")
                if answer.done():
                    continue
                if isinstance(result, BaseException):
                    answer.set_exception(result)
                else:
                    answer.set_result(result)


class RateLimiter:
    """Counts requests per family and client and says whether each may go on.

    When the store cannot be reached the request goes on (logged): an outage of
    the limiter's Redis must not take the API down with it.
    """

    WARN_EVERY_SECONDS = 10.0

    def __init__(self, limits: Mapping[str, Limit], store: WindowStore) -> None:
        self._limits = dict(limits)
        self._key_prefixes = {
            family: f"{family}:{limit.count}/{limit.period_seconds}s:" for family, limit in limits.items()
        }
        self._store = store
        self._next_warning = 0.0

    async def hit(self, family: str, client: str) -> Decision | None:
        limit = self._limits[family]
        try:
            count, seconds_left = await self._store.hit(
                self._key_prefixes[family] + client, limit.period_seconds
            )
        except (redis.RedisError, OSError) as exc:
            if (now := time.monotonic()) >= self._next_warning:  # one line per outage, not one per request
                self._next_warning = now + self.WARN_EVERY_SECONDS
                logger.warning("rate limit store unavailable, requests let through: %s", type(exc).__name__)
            return None
        return Decision(
            allowed=count <= limit.count,
            limit=limit.count,
            remaining=max(0, limit.count - count),
            reset_seconds=max(1, math.ceil(seconds_left)),
        )
