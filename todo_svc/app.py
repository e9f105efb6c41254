"""`create_app(settings)`: the one place that wires the application together."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager, nullcontext

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import Scope
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_svc.api import api_v1, deprecation_headers, legacy_routes, operation_id, ops_routes
from todo_svc.api.auth import PUBLIC, TokenIssuer, build_jwt_auth
from todo_svc.api.body import StrictStructSchemaPlugin
from todo_svc.api.compat import allow_every_method, wrap_asgi_handler
from todo_svc.api.cursors import Positions
from todo_svc.api.dependencies import (
    provide_auth_service,
    provide_database,
    provide_routed_database,
    provide_session_service,
    provide_task_service,
)
from todo_svc.api.docs import RedocPage, SwaggerPage
from todo_svc.api.errors import handle_exception
from todo_svc.api.openapi import ContractJsonPlugin
from todo_svc.api.rate_limits import rate_limit_middleware
from todo_svc.core import metrics
from todo_svc.core.check_log import CheckLog
from todo_svc.core.drain import CONNECTION_CLOSE, Drain
from todo_svc.core.logging import configure_logging
from todo_svc.core.middleware import ResponseHeaders
from todo_svc.core.passwords import PasswordHasher
from todo_svc.core.redis_client import connect_redis
from todo_svc.core.telemetry import RequestTelemetry
from todo_svc.db.config import database_config, pool_gauges, replica_engines
from todo_svc.db.replicas import ReplicaSet
from todo_svc.db.write_positions import InProcessWritePositions, RedisWritePositions, WritePositions
from todo_svc.settings import Settings, load_settings

DOCS_PATH = "/docs"
WRITE_POSITION_MARGIN_SECONDS = 30.0  # beyond the replicas' lag limit: their checks' period, and then some


def cors_config(settings: Settings) -> CORSConfig | None:
    """CORS only for the configured origins (none by default)."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=settings.cors_origins,
        allow_methods=settings.cors_methods,  # type: ignore[arg-type]
        allow_headers=settings.cors_headers,
        expose_headers=[
            *("ETag", "Location", "X-Request-ID", "Idempotent-Replayed", "Deprecation", "Link"),
            *("Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"),
        ],
    )


def openapi_config(settings: Settings) -> OpenAPIConfig | None:
    """OpenAPI 3.1 at /docs/openapi.json, Swagger UI at /docs, ReDoc at /docs/redoc; or none at all."""
    if not settings.docs_enabled:
        return None
    return OpenAPIConfig(
        title="todo-svc",
        version="1.0.0",
        description="Users register, log in with short-lived JWTs and manage their own tasks.",
        openapi_router=Router(DOCS_PATH, route_handlers=[], include_in_schema=False, opt=PUBLIC),
        render_plugins=[SwaggerPage(path="/"), RedocPage(path="/redoc"), ContractJsonPlugin()],
        operation_id_creator=operation_id,
        use_handler_docstrings=True,
    )


def response_headers(drain: Drain) -> Callable[[Scope], list[tuple[bytes, bytes]]]:
    """The headers that depend on the route, the request and the worker: deprecation, and
    `Connection: close` while draining."""

    def headers(scope: Scope) -> list[tuple[bytes, bytes]]:
        added = deprecation_headers(scope)
        if drain.draining:
            added.append(CONNECTION_CLOSE)
        return added

    return headers


def replica_set(settings: Settings, primary: AsyncEngine, redis_client: Redis | None) -> ReplicaSet | None:
    """The read replicas, if any, with the store of each user's last write position: Redis when
    configured (shared by every instance), else this process."""
    if not settings.replica_urls:
        return None
    remember = settings.replica_max_lag_seconds + WRITE_POSITION_MARGIN_SECONDS
    positions: WritePositions = (
        RedisWritePositions(redis_client, settings.redis_key_prefix, remember)
        if redis_client is not None
        else InProcessWritePositions(remember)
    )
    return ReplicaSet(primary, replica_engines(settings), settings.replica_max_lag_seconds, positions)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    access_log = configure_logging(settings.log_level, settings.log_json)
    jwt_auth = build_jwt_auth(settings)
    tokens = TokenIssuer(jwt_auth)
    positions = Positions(settings.jwt_secret_key)
    hasher = PasswordHasher(rounds=settings.bcrypt_rounds, workers=settings.password_hash_workers)
    db_config = database_config(settings)
    redis_client = connect_redis(settings.redis_url) if settings.redis_url else None
    rate_limits = rate_limit_middleware(settings, redis_client)
    engine = db_config.get_engine()  # the plugin disposes of it
    replicas = replica_set(settings, engine, redis_client)
    drain = Drain()

    @asynccontextmanager
    async def worker_lifetime(_: Litestar) -> AsyncGenerator[None, None]:
        # Everything built so far lives as long as the worker: keep it out of the
        # collector's way, so full collections stay short (they show in p99).
        gc.collect()
        gc.freeze()
        drain.listen()
        async with pool_gauges(engine), replicas.watching() if replicas else nullcontext():
            yield
        metrics.worker_stopped()
        hasher.close()
        if redis_client is not None:
            await redis_client.aclose()

    app = Litestar(
        route_handlers=[api_v1, legacy_routes, ops_routes],
        plugins=[SQLAlchemyPlugin(config=db_config), StrictStructSchemaPlugin()],
        on_app_init=[jwt_auth.on_app_init],  # the auth middleware goes first: the limits count users
        middleware=[rate_limits] if rate_limits is not None else [],
        dependencies={
            "db": Provide(provide_routed_database if replicas else provide_database),
            "task_service": Provide(provide_task_service, sync_to_thread=False),
            "auth_service": Provide(provide_auth_service, sync_to_thread=False),
            "sessions": Provide(provide_session_service, sync_to_thread=False),
            "tokens": Provide(lambda: tokens, sync_to_thread=False, use_cache=True),
        },
        exception_handlers={Exception: handle_exception},
        before_request=allow_every_method(),
        request_max_body_size=settings.max_request_body_bytes,
        cors_config=cors_config(settings),
        lifespan=[worker_lifetime],
        state=State(
            {
                "settings": settings,
                "password_hasher": hasher,
                "database_engine": engine,
                "replicas": replicas,
                "redis": redis_client,
                "drain": drain,
                "positions": positions,
                "readiness_log": CheckLog(logging.getLogger("todo_svc.readiness")),
                "database_session_maker": db_config.create_session_maker(),
            }
        ),
        openapi_config=openapi_config(settings),
        logging_config=None,  # configure_logging above set up every logger
        debug=False,
    )
    # Outside routing and the exception handler: every answer, 404s and 500s included, gets the
    # headers, is logged and is counted.
    wrap_asgi_handler(
        app,
        lambda handler: RequestTelemetry(
            ResponseHeaders(handler, DOCS_PATH, extra=response_headers(drain)), access_log=access_log
        ),
    )
    return app
