"""Rate limits on the routes: which family a route belongs to, whom it counts, what a 429 says.

A handler names its family in `opt` (`AUTH_LIMITED`, `TASKS_LIMITED`); one
middleware, inside the auth middleware, counts every such request (auth per
client address, tasks per user) before the handler runs. Login also counts per
email, in the handler, once the body is read. The decision is kept in the scope
so that every answer, 2xx or 429, reports it in `RateLimit-*` headers.
"""

from __future__ import annotations

import hashlib
from typing import Any

import redis.asyncio as redis
from litestar.datastructures import ResponseHeader
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from todo_svc.core import metrics
from todo_svc.core.forwarded import ClientAddress
from todo_svc.core.ratelimit import Decision, MemoryWindows, RateLimiter, RedisWindows, WindowStore
from todo_svc.settings import Settings

RATE_LIMIT = "rate_limit"  # the opt key that names a handler's family
AUTH_LIMITED: dict[str, Any] = {RATE_LIMIT: "auth"}
TASKS_LIMITED: dict[str, Any] = {RATE_LIMIT: "tasks"}
PER_USER_FAMILIES = frozenset({"tasks"})
RATE_LIMIT_HEADERS = [  # for OpenAPI; the values are set as each response starts
    ResponseHeader(
        name=f"RateLimit-{name}",
        documentation_only=True,
        description=description,
        value="0",  # documentation only: Litestar takes the header's schema (a string) from the value's type
    )
    for name, description in (
        ("Limit", "Requests allowed in the window."),
        ("Remaining", "Requests left in the window."),
        ("Reset", "Seconds until the window resets."),
    )
]
_DECISION = "rate_limit_decision"


class RateLimits:
    """The app's limiter, applied to requests."""

    def __init__(self, limiter: RateLimiter | None, client_address: ClientAddress) -> None:
        self.limiter = limiter  # None: limits are off
        self.client_address = client_address

    @classmethod
    def from_settings(cls, settings: Settings, redis_client: redis.Redis | None) -> RateLimits:
        """Counters in Redis when there is one (shared by every worker and instance), else in this process."""
        limiter = None
        if settings.rate_limit_enabled:
            store: WindowStore = (
                RedisWindows(redis_client, settings.redis_key_prefix) if redis_client else MemoryWindows()
            )
            limiter = RateLimiter(settings.rate_limits, store)
        return cls(limiter, ClientAddress(settings.trusted_proxy_networks))

    @property
    def enabled(self) -> bool:
        return self.limiter is not None

    async def enforce(self, scope: Scope, family: str, client: str) -> None:
        """Count this request for `client` in `family`; 429 once the family's limit is spent."""
        if self.limiter is None or (decision := await self.limiter.hit(family, client)) is None:
            return
        state = scope.setdefault("state", {})
        reported: Decision | None = state.get(_DECISION)
        if reported is None or not decision.allowed or decision.remaining < reported.remaining:
            state[_DECISION] = decision  # the headers tell the tightest limit this request met
        if not decision.allowed:
            metrics.RATE_LIMITED.labels(family).inc()
            raise TooManyRequestsException(
                detail=f"Too many requests; retry in {decision.reset_seconds} s",
                headers={"Retry-After": str(decision.reset_seconds)},
            )

    async def enforce_login(self, scope: Scope, email: str) -> None:
        """Login attempts per account, whatever addresses they come from (the email is not kept)."""
        digest = hashlib.blake2b(email.encode(), digest_size=16).hexdigest()
        await self.enforce(scope, "login", digest)


class RateLimitMiddleware(ASGIMiddleware):
    """Counts the requests of every handler that names a family in its `opt`."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, rate_limits: RateLimits) -> None:
        self._rate_limits = rate_limits

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        family = scope["route_handler"].opt.get(RATE_LIMIT)
        if family is not None:
            user = scope.get("user")  # none on OPTIONS, which the auth middleware lets through
            if family in PER_USER_FAMILIES and user is not None:
                client = f"user:{user.id}"
            else:
                client = self._rate_limits.client_address(scope)
            await self._rate_limits.enforce(scope, family, client)
        await next_app(scope, receive, send)


def rate_limit_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """`RateLimit-Limit/Remaining/Reset` for a request that was counted."""
    decision: Decision | None = scope.get("state", {}).get(_DECISION)
    return decision.headers() if decision is not None else []
