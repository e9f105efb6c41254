"""Hot statements run straight on the driver, without SQLAlchemy's per-execution machinery.

The statements are ordinary SQLAlchemy Core built from the models' tables (one
source of truth). On PostgreSQL each is compiled once per dialect and sent by
asyncpg (which prepares it once per connection) on a connection borrowed from
the engine's own pool (one pool), in autocommit: one round trip, no
BEGIN/COMMIT, atomic as a single statement is.

When the request's session already holds a transaction (a use case that must
be all or nothing, like an idempotent create), the statement runs through the
session instead, inside that transaction; so does every statement on other
databases (the embedded SQLite default). Driver errors are raised as
SQLAlchemy's, so callers handle one family of exceptions whatever ran the
statement.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import Pool, QueuePool
from sqlalchemy.sql.expression import Select, UpdateBase
from sqlalchemy.util import greenlet_spawn

from todo_svc.db.session import RequestDatabase

Statement = Select[Any] | UpdateBase
_CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)


class CompiledStatement:
    """A Core statement with named parameters, compiled once per dialect."""

    __slots__ = ("_by_dialect", "statement")

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        if (known := self._by_dialect.get(dialect.name)) is None:
            compiled = self.statement.compile(dialect=dialect)
            known = self._by_dialect[dialect.name] = _Compiled(
                sql=compiled.string,
                order=tuple(compiled.positiontup or ()),
                required=frozenset(name for name, bind in compiled.binds.items() if bind.required),
                literals={name: bind.value for name, bind in compiled.binds.items() if not bind.required},
            )
        return known

    def positional(self, dialect: Dialect, params: dict[str, Any]) -> tuple[str, list[Any]]:
        """The SQL text and its `$n` arguments (values written into the statement fill their places)."""
        compiled = self._compiled(dialect)
        arguments = [params[name] if name in params else compiled.literals[name] for name in compiled.order]
        return compiled.sql, arguments

    def named(self, dialect: Dialect, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters the statement takes, for execution through a session."""
        return {name: params[name] for name in self._compiled(dialect).required}


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: tuple[str, ...]
    required: frozenset[str]
    literals: dict[str, Any]


class Driver:
    """Runs `CompiledStatement`s for one request."""

    __slots__ = ("_database",)

    def __init__(self, database: RequestDatabase) -> None:
        self._database = database

    async def fetch_one(self, statement: CompiledStatement, **params: Any) -> Sequence[Any] | None:
        rows = await self.fetch_all(statement, **params)
        return rows[0] if rows else None

    async def fetch_all(self, statement: CompiledStatement, **params: Any) -> Sequence[Sequence[Any]]:
        async with self.borrow() as statements:
            return await statements.fetch_all(statement, **params)

    async def fetch_value(self, statement: CompiledStatement, **params: Any) -> Any:
        row = await self.fetch_one(statement, **params)
        return row[0] if row else None

    @asynccontextmanager
    async def borrow(self) -> AsyncIterator[Statements]:
        """One connection for several statements (each still its own autocommit unit)."""
        database = self._database
        dialect = database.dialect
        if dialect.name != "postgresql" or database.in_transaction():
            yield Statements(dialect, session=database.session)
            return
        async with self._connection() as connection:
            yield Statements(dialect, connection=connection)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        pool = self._database.engine.pool
        async with _turns(pool):
            pooled = await greenlet_spawn(pool.connect)
            try:
                yield pooled.driver_connection
            except _CONNECTION_LOST as error:
                pooled.invalidate(error)  # a dead connection must not go back to the pool
                raise sa_exc.OperationalError(None, None, error, connection_invalidated=True) from error
            except asyncpg.PostgresError as error:
                raise translated(error) from error
            finally:
                await greenlet_spawn(pooled.close)


class Statements:
    """Statements run on one borrowed driver connection, or through the session."""

    __slots__ = ("_connection", "_dialect", "_session")

    def __init__(
        self, dialect: Dialect, *, session: AsyncSession | None = None, connection: Any = None
    ) -> None:
        self._dialect, self._session, self._connection = dialect, session, connection

    async def fetch_all(self, statement: CompiledStatement, **params: Any) -> Sequence[Sequence[Any]]:
        if self._session is not None:
            bound = statement.named(self._dialect, params)
            return (await self._session.execute(statement.statement, bound)).all()
        sql, arguments = statement.positional(self._dialect, params)
        return await self._connection.fetch(sql, *arguments)  # type: ignore[no-any-return]

    async def fetch_value(self, statement: CompiledStatement, **params: Any) -> Any:
        rows = await self.fetch_all(statement, **params)
        return rows[0][0] if rows else None


def translated(error: asyncpg.PostgresError) -> sa_exc.DBAPIError:
    """The driver's error as SQLAlchemy raises it for the same failure through a session."""
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return sa_exc.IntegrityError(None, None, error)
    if isinstance(error, asyncpg.DataError):
        return sa_exc.DataError(None, None, error)
    return sa_exc.DatabaseError(None, None, error)


_TURNS: weakref.WeakKeyDictionary[Pool, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _turns(pool: Pool) -> AbstractAsyncContextManager[Any]:
    """First come, first served for the pool's connections.

    Waiting inside the pool lets a request that just arrived take a connection
    released for one that has waited; under load that stretches p99 several
    times over p50. A FIFO semaphore with one permit per connection keeps order.
    """
    if not isinstance(pool, QueuePool):  # no fixed capacity (e.g. NullPool): nothing to queue for
        return nullcontext()
    if (turns := _TURNS.get(pool)) is None:
        turns = _TURNS[pool] = asyncio.Semaphore(pool.size())
    return turns
