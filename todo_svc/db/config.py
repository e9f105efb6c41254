"""Engine, sessions and migrations configuration, built from the settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from todo_svc.core import metrics
from todo_svc.db.database import FairQueuePool
from todo_svc.settings import Settings

VERSION_TABLE = "alembic_version"


def migrations_dir() -> Path:
    """`migrations/` beside the package in a checkout, inside it in a built wheel."""
    package = Path(__file__).resolve().parent.parent
    bundled = package / "migrations"
    return bundled if bundled.is_dir() else package.parent / "migrations"


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _unnamed() -> str:
    return ""


# Behind a pooler in transaction mode, consecutive transactions of one client connection run on
# different server connections, so a named prepared statement meets another client's or none at
# all. Without a statement cache, asyncpg sends every statement unnamed and parses it again in the
# same message as its execution (Parse/Bind/Execute/Sync), so nothing refers to a statement that
# an earlier transaction prepared. SQLAlchemy's dialect names its statements unless told otherwise.
TRANSACTION_POOLER_CONNECT_ARGS: dict[str, Any] = {
    "statement_cache_size": 0,  # asyncpg's
    "prepared_statement_cache_size": 0,  # SQLAlchemy's asyncpg dialect's
    "prepared_statement_name_func": _unnamed,
}


# A replica that does not answer is passed over, not waited for: the read goes to the primary.
REPLICA_CONNECT_ARGS: dict[str, Any] = {"timeout": 2, "command_timeout": 5}  # asyncpg's, in seconds


def _postgresql_pool(settings: Settings, **connect_args: Any) -> dict[str, Any]:
    """The engine options of every PostgreSQL endpoint (primary, replicas; each perhaps a PgBouncer)."""
    pooled = TRANSACTION_POOLER_CONNECT_ARGS if settings.transaction_pooled else {}
    return {
        "poolclass": FairQueuePool,
        "pool_size": settings.database_pool_size,
        "max_overflow": 0,
        "pool_timeout": 10,
        "pool_recycle": 1800,
        "connect_args": {**pooled, **connect_args},
    }


def database_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    url = make_url(settings.async_database_url)
    is_sqlite = url.get_backend_name() == "sqlite"
    engine_config = EngineConfig() if is_sqlite else EngineConfig(**_postgresql_pool(settings))
    config = SQLAlchemyAsyncConfig(
        connection_string=url.render_as_string(hide_password=False),
        engine_config=engine_config,
        session_config=AsyncSessionConfig(expire_on_commit=False, autoflush=False),
        alembic_config=AlembicAsyncConfig(
            script_location=str(migrations_dir()),
            version_table_name=VERSION_TABLE,
            render_as_batch=True,
        ),
    )
    if is_sqlite:
        event.listen(config.get_engine().sync_engine, "connect", _enable_sqlite_foreign_keys)
    return config


def replica_engines(settings: Settings) -> list[AsyncEngine]:
    """One engine, with its own pool, per `DATABASE_REPLICA_URLS` entry."""
    return [
        create_async_engine(url, **_postgresql_pool(settings, **REPLICA_CONNECT_ARGS))
        for url in settings.replica_urls
    ]


@asynccontextmanager
async def pool_gauges(engine: AsyncEngine, every_seconds: float = 1.0) -> AsyncIterator[None]:
    """Report the pool's capacity, and the connections it has lent out, sampled every second
    (exact enough for a scrape every few seconds, and nothing on the request path)."""
    pool = engine.sync_engine.pool
    capacity = pool.size() if isinstance(pool, QueuePool) else 0

    async def sample() -> None:
        while True:
            metrics.POOL_IN_USE.set(pool.checkedout() if isinstance(pool, QueuePool) else 0)
            await asyncio.sleep(every_seconds)

    metrics.POOL_SIZE.inc(capacity)
    sampler = asyncio.create_task(sample())
    try:
        yield
    finally:
        sampler.cancel()
        metrics.POOL_SIZE.dec(capacity)
        metrics.POOL_IN_USE.set(0)
