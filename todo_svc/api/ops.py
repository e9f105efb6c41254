"""Liveness and readiness probes, and the Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_svc.api.auth import NO_SECURITY, PUBLIC
from todo_svc.api.dependencies import database_answers
from todo_svc.api.errors import error_response, error_responses
from todo_svc.api.schemas import Health, Readiness
from todo_svc.core.check_log import CheckLog
from todo_svc.core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from todo_svc.core.metrics import exposition as metrics_text

READINESS_TIMEOUT_SECONDS = 2.0


@get(
    "/health",
    opt=PUBLIC,
    security=NO_SECURITY,
    tags=["ops"],
    cache_control=None,
    responses=error_responses(),
)
async def health() -> Health:
    """Liveness: the process answers. Touches no dependency."""
    return Health()


async def _check(log: CheckLog, name: str, probe: Callable[[], Awaitable[Any]]) -> str:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await probe()
    except TimeoutError:
        log.failed(name, "timeout", f"no answer within {READINESS_TIMEOUT_SECONDS} s")
        return "timeout"
    except Exception as exc:  # any failure means "not ready"; its text stays out of the body and the log
        log.failed(name, "unavailable", _error_class(exc))
        return "unavailable"
    log.passed(name)
    return "ok"


def _error_class(exc: BaseException) -> str:
    """`OperationalError from ConnectionRefusedError`: what failed, never its message (it may hold a URL)."""
    cause = exc.__cause__ or exc.__context__
    return f"{type(exc).__name__} from {type(cause).__name__}" if cause else type(exc).__name__


@get("/health/ready", opt=PUBLIC, security=NO_SECURITY, tags=["ops"], responses=error_responses(503))
async def readiness(
    request: Request[Any, Any, Any], db_engine: NamedDependency[AsyncEngine]
) -> Response[Readiness]:
    """Readiness: 200 when the database (and Redis, when configured) answer within a short timeout,
    else 503, with each check; 503 at once while the instance drains before it stops. Each read
    replica's health (ok, lagging, unavailable) is reported too: reads go elsewhere while one is
    not ok, so it never fails readiness."""
    # Annotated with the 200 body only: the 503's ErrorBody is documented by `responses`.
    if request.app.state.drain.draining:
        return error_response(  # type: ignore[return-value]
            request, 503, "The instance is shutting down", checks={"shutdown": "draining"}
        )
    log = request.app.state.readiness_log
    checks = {"database": await _check(log, "database", lambda: database_answers(db_engine))}
    if (redis_client := request.app.state.redis) is not None:
        checks["redis"] = await _check(log, "redis", redis_client.ping)
    ready = all(state == "ok" for state in checks.values())
    if (replicas := request.app.state.replicas) is not None:
        checks |= replicas.report()  # reported, and never a reason for 503
    if ready:
        return Response(Readiness(status="ok", checks=checks))
    return error_response(request, 503, "A dependency is not available", checks=checks)  # type: ignore[return-value]


@get(
    "/metrics",
    opt=PUBLIC,
    security=NO_SECURITY,
    tags=["ops"],
    media_type=METRICS_CONTENT_TYPE,
    cache_control=None,
    responses={
        200: ResponseSpec(
            data_container=str,
            media_type=MediaType.TEXT,
            description="Prometheus text.",
            generate_examples=False,
        ),
        **error_responses(),
    },
)
async def metrics() -> Response[bytes]:
    """Prometheus text exposition: every worker's values, whichever worker answers."""
    return Response(metrics_text(), media_type=METRICS_CONTENT_TYPE)
