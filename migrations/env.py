"""Alembic environment, driven by `todo-svc db …` (advanced-alchemy's AlembicCommands).

The command passes the engine, the version table name and the metadata, so
there is one entry point and one version table.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from alembic import context
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncEngine, async_engine_from_config

from todo_svc.db.models import Task, User  # noqa: F401 - registers the tables (every model of the module)

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommandConfig
    from sqlalchemy.engine import Connection

config = cast("AlembicCommandConfig", context.config)
target_metadata = User.metadata  # Task shares it: both models are imported for autogenerate


def _exists_here(object_: Any, _name: Any, type_: str, _reflected: bool, _compare_to: Any) -> bool:
    """Indexes of a PostgreSQL-only kind (GIN) are made, and compared, only on PostgreSQL."""
    if type_ == "index" and object_.dialect_kwargs.get("postgresql_using"):
        return bool(context.get_context().dialect.name == "postgresql")
    return True


def _configure(**kwargs: object) -> None:
    context.configure(
        include_object=_exists_here,
        target_metadata=target_metadata,
        version_table=config.version_table_name,
        version_table_schema=config.version_table_schema,
        render_as_batch=config.render_as_batch,
        user_module_prefix=config.user_module_prefix,
        compare_type=config.compare_type,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=config.db_url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = config.engine or async_engine_from_config(
        {"sqlalchemy.url": config.db_url}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    async with cast("AsyncEngine", engine).connect() as connection:
        await connection.run_sync(_run_on)
    if config.engine is None:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
