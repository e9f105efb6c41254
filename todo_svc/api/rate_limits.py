"""Rate limits on the routes: which family a route counts in, whom it counts, what a 429 says.

A handler names its family in `opt` (`AUTH_LIMITED`, `TASKS_LIMITED`), and login adds
`LOGIN_LIMITED`. One middleware, inside the auth middleware, counts every such request
before the handler runs: auth per client address, tasks per user, login also per
normalised email. It answers the 429 itself, and reports the tightest limit the request
met in `RateLimit-*` headers on every answer to a counted request, 2xx or not.
"""

from __future__ import annotations

import hashlib
from typing import Any

import redis.asyncio as redis
from litestar import Request
from litestar.datastructures import ResponseHeader
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from todo_svc.api.body import read_json_ahead
from todo_svc.api.errors import error_response
from todo_svc.api.schemas import Credentials
from todo_svc.core import metrics
from todo_svc.core.forwarded import ClientAddress
from todo_svc.core.ratelimit import Decision, MemoryWindows, RateLimiter, RedisWindows, WindowStore
from todo_svc.services.auth import normalize_email
from todo_svc.settings import Settings

RATE_LIMIT = "rate_limit"  # the opt key that names a handler's family
PER_EMAIL = "rate_limit_per_email"  # the opt key of a handler whose body's email is counted too
AUTH_LIMITED: dict[str, Any] = {RATE_LIMIT: "auth"}
TASKS_LIMITED: dict[str, Any] = {RATE_LIMIT: "tasks"}
LOGIN_LIMITED: dict[str, Any] = {PER_EMAIL: "login"}
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


def rate_limit_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """`RateLimit-Limit/Remaining/Reset` reporting one decision."""
    return [
        (b"ratelimit-limit", b"%d" % decision.limit),
        (b"ratelimit-remaining", b"%d" % decision.remaining),
        (b"ratelimit-reset", b"%d" % decision.reset_seconds),
    ]


def tightest(reported: Decision | None, met: Decision | None) -> Decision | None:
    """The decision to report once another limit was met: a refusal, else the one with the fewest
    requests left (None: the store could not answer)."""
    if reported is None or met is None:
        return met or reported
    return met if not met.allowed or met.remaining < reported.remaining else reported


class RateLimitMiddleware(ASGIMiddleware):
    """Counts the requests of every handler that names a family in its `opt`."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limiter: RateLimiter, client_address: ClientAddress) -> None:
        self._limiter = limiter
        self._client_address = client_address

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        opt = scope["route_handler"].opt
        family = opt.get(RATE_LIMIT)
        if family is None:
            await next_app(scope, receive, send)
            return
        user = scope.get("user")  # none on OPTIONS, which the auth middleware lets through
        if family in PER_USER_FAMILIES and user is not None:
            decision = await self._count(family, f"user:{user.id}")
        else:
            decision = await self._count(family, self._client_address(scope))
        if (per_email := opt.get(PER_EMAIL)) is not None and (decision is None or decision.allowed):
            credentials, receive = await read_json_ahead(scope, receive, Credentials)
            if credentials is not None:  # a body the handler refuses (400, 413, 415) is not counted
                # Per account, whatever addresses the attempts come from; the email is not kept.
                email = normalize_email(credentials.email).encode()
                digest = hashlib.blake2b(email, digest_size=16).hexdigest()
                decision = tightest(decision, await self._count(per_email, digest))
        if decision is None:  # the store is unreachable: nothing to report
            await next_app(scope, receive, send)
            return
        headers = rate_limit_headers(decision)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        if decision.allowed:
            await next_app(scope, receive, send_with_headers)
        else:
            await too_many_requests(scope, receive, send_with_headers, decision.reset_seconds)

    async def _count(self, family: str, client: str) -> Decision | None:
        decision = await self._limiter.hit(family, client)
        if decision is not None and not decision.allowed:
            metrics.RATE_LIMITED.labels(family).inc()
        return decision


def rate_limit_middleware(settings: Settings, redis_client: redis.Redis | None) -> RateLimitMiddleware | None:
    """Counters in Redis when there is one (shared by every worker and instance), else in this
    process; no middleware when limits are off."""
    if not settings.rate_limit_enabled:
        return None
    store: WindowStore = MemoryWindows()
    if redis_client is not None:
        store = RedisWindows(redis_client, settings.redis_key_prefix)
    limiter = RateLimiter(settings.rate_limits, store)
    return RateLimitMiddleware(limiter, ClientAddress(settings.trusted_proxy_networks))


async def too_many_requests(scope: Scope, receive: Receive, send: Send, retry_after: int) -> None:
    """The contract's 429: its error body and `Retry-After`."""
    request: Request[Any, Any, Any] = Request(scope, receive)
    response = error_response(
        request,
        429,
        f"Too many requests; retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)
