"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_svc.api.auth import NO_SECURITY, PUBLIC
from todo_svc.api.errors import error_response, error_responses
from todo_svc.api.schemas import Health, Readiness

READINESS_TIMEOUT_SECONDS = 2.0


@get("/health", opt=PUBLIC, security=NO_SECURITY, tags=["ops"], cache_control=None)
async def health() -> Health:
    """Liveness: the process answers. Touches no dependency."""
    return Health()


async def _database_check(engine: AsyncEngine) -> str:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return "timeout"
    except Exception:  # any failure means "not ready"; its text stays out of the body
        return "unavailable"
    return "ok"


@get("/health/ready", opt=PUBLIC, security=NO_SECURITY, tags=["ops"], responses=error_responses(503))
async def readiness(
    request: Request[Any, Any, Any], db_engine: NamedDependency[AsyncEngine]
) -> Response[Readiness]:
    """Readiness: 200 when the database answers within a short timeout, else 503, with each check."""
    # Annotated with the 200 body only: the 503's ErrorBody is documented by `responses`.
    checks = {"database": await _database_check(db_engine)}
    if all(state == "ok" for state in checks.values()):
        return Response(Readiness(status="ok", checks=checks))
    return error_response(request, 503, "A dependency is not available", checks=checks)  # type: ignore[return-value]
