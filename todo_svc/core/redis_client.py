"""The service's Redis client, with short timeouts: an unreachable Redis delays a request briefly."""

from __future__ import annotations

import redis.asyncio as redis

TIMEOUT_SECONDS = 0.25


def connect_redis(url: str) -> redis.Redis:
    """A client for `url`; it connects lazily, on the event loop of its first command."""
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS)
