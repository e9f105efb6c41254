"""How a request reaches the database: its turn at the pool, its statements, its one transaction.

Every statement of the data layer is ordinary SQLAlchemy Core built from the
models' tables, wrapped in a `CompiledStatement` and run by `Statements`, the
one executor. On PostgreSQL it is compiled once per dialect and sent by asyncpg
(which prepares it once per connection): one round trip, without SQLAlchemy's
per-execution machinery, which costs more CPU than the query (see
`bench/executors.py`). A statement runs on a connection borrowed from the
engine's pool in autocommit, or inside the request's transaction once a use
case has opened it (`RequestDatabase.all_or_nothing`, or an advanced-alchemy
repository writing through the session): then on the session's own connection,
so the session and the statements commit or roll back together. On other
databases (the embedded SQLite default) the same statements run through the
session. Errors come out as SQLAlchemy's, whatever ran the statement.

With read replicas configured, a read-only request's statements outside a transaction run on the
replica its `ReadRoute` chose (`db/replicas.py`); one the replica fails runs again on the primary.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql.expression import Select, UpdateBase
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty

if TYPE_CHECKING:
    from todo_svc.db.replicas import ReadRoute, Replica

Row = Mapping[str, Any]
Statement = Select[Any] | UpdateBase
_CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)
# A replica's fault, not the statement's: the same read is sent to the primary. (OSError
# includes TimeoutError: the replica's connect and statement timeouts.)
_REPLICA_FAULTS = (
    *(sa_exc.SQLAlchemyError, asyncpg.PostgresError, asyncpg.InternalClientError),
    *_CONNECTION_LOST,
)
_STATEMENT_FAULTS = (sa_exc.DataError, sa_exc.IntegrityError)  # the primary would refuse them too
T = TypeVar("T")


class CompiledStatement:
    """A Core statement with named parameters, compiled once per dialect.

    Parameters left out take the value written into the statement, or the
    column's scalar default from the model (as SQLAlchemy would fill it in).
    """

    __slots__ = ("_by_dialect", "statement")

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        if (known := self._by_dialect.get(dialect.name)) is None:
            compiled = self.statement.compile(dialect=dialect)
            given = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
            for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
                if column.default is None or not column.default.is_scalar:
                    raise ValueError(f"{column} needs a value: its default is not a constant")
                given[column.key] = column.default.arg  # type: ignore[attr-defined]
            known = self._by_dialect[dialect.name] = _Compiled(
                sql=compiled.string,
                order=tuple(compiled.positiontup or ()),
                required=frozenset(name for name, bind in compiled.binds.items() if bind.required),
                given=given,
            )
        return known

    def positional(self, dialect: Dialect, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL text and its `$n` arguments."""
        compiled = self._compiled(dialect)
        given = compiled.given
        return compiled.sql, [params[name] if name in params else given[name] for name in compiled.order]

    def named(self, dialect: Dialect, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters the statement takes, for execution through SQLAlchemy."""
        return {name: params[name] for name in self._compiled(dialect).required if name in params}


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: tuple[str, ...]
    required: frozenset[str]
    given: dict[str, Any]


class Statements:
    """The executor: runs `CompiledStatement`s on one connection."""

    __slots__ = ("_dialect",)

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect

    async def fetch_all(self, statement: CompiledStatement, **params: Any) -> Sequence[Row]:
        raise NotImplementedError

    async def fetch_many(self, statement: CompiledStatement, many: Iterable[Mapping[str, Any]]) -> list[Row]:
        """The statement once per parameter set, sent together; the rows of all, in order."""
        raise NotImplementedError

    async def fetch_one(self, statement: CompiledStatement, **params: Any) -> Row | None:
        rows = await self.fetch_all(statement, **params)
        return rows[0] if rows else None

    async def fetch_value(self, statement: CompiledStatement, **params: Any) -> Any:
        row = await self.fetch_one(statement, **params)
        return next(iter(row.values())) if row is not None else None


class _DriverStatements(Statements):
    """Straight on an asyncpg connection (PostgreSQL)."""

    __slots__ = ("_connection",)

    def __init__(self, dialect: Dialect, connection: asyncpg.Connection) -> None:
        super().__init__(dialect)
        self._connection = connection

    async def fetch_all(self, statement: CompiledStatement, **params: Any) -> Sequence[Row]:
        sql, arguments = statement.positional(self._dialect, params)
        with _translated():
            return cast("Sequence[Row]", await self._connection.fetch(sql, *arguments))

    async def fetch_many(self, statement: CompiledStatement, many: Iterable[Mapping[str, Any]]) -> list[Row]:
        positional = [statement.positional(self._dialect, params) for params in many]
        if not positional:
            return []
        with _translated():
            rows = await self._connection.fetchmany(positional[0][0], [values for _, values in positional])
        return cast("list[Row]", rows)


class _SessionStatements(Statements):
    """Through the session (the other databases: the embedded SQLite default)."""

    __slots__ = ("_session",)

    def __init__(self, dialect: Dialect, session: AsyncSession) -> None:
        super().__init__(dialect)
        self._session = session

    async def fetch_all(self, statement: CompiledStatement, **params: Any) -> Sequence[Row]:
        bound = statement.named(self._dialect, params)
        rows = (await self._session.execute(statement.statement, bound)).mappings()
        # Plain `str` keys: a subquery's column names come back as SQLAlchemy's `str` subclass.
        return [{str(name): value for name, value in row.items()} for row in rows]

    async def fetch_many(self, statement: CompiledStatement, many: Iterable[Mapping[str, Any]]) -> list[Row]:
        return [row for params in many for row in await self.fetch_all(statement, **params)]


class _ReplicaStatements(Statements):
    """On the request's replica; a statement the replica fails runs on the primary, as do the
    request's later ones."""

    __slots__ = ("_primary", "_replica", "_route")

    def __init__(self, dialect: Dialect, replica: Replica, route: ReadRoute, primary: AsyncEngine) -> None:
        super().__init__(dialect)
        self._replica: Replica | None = replica
        self._route = route
        self._primary = primary

    async def fetch_all(self, statement: CompiledStatement, **params: Any) -> Sequence[Row]:
        return await self._read(lambda statements: statements.fetch_all(statement, **params))

    async def fetch_many(self, statement: CompiledStatement, many: Iterable[Mapping[str, Any]]) -> list[Row]:
        many = list(many)
        return await self._read(lambda statements: statements.fetch_many(statement, many))

    async def _read(self, read: Callable[[Statements], Awaitable[T]]) -> T:
        if (replica := self._replica) is not None:
            try:
                async with borrowed(replica.engine, discard_on_error=True) as connection:
                    return await read(_DriverStatements(self._dialect, connection))
            except _STATEMENT_FAULTS:
                raise
            except _REPLICA_FAULTS as error:
                self._replica = None
                self._route.failed(replica, error)
        async with borrowed(self._primary) as connection:
            return await read(_DriverStatements(self._dialect, connection))


class _translated:
    """asyncpg's errors as SQLAlchemy raises them for the same failure through a session."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> None:
        if isinstance(error, _CONNECTION_LOST):
            raise sa_exc.OperationalError(None, None, error, connection_invalidated=True) from error
        if isinstance(error, asyncpg.IntegrityConstraintViolationError):
            raise sa_exc.IntegrityError(None, None, error) from error
        if isinstance(error, asyncpg.DataError):
            raise sa_exc.DataError(None, None, error) from error
        if isinstance(error, asyncpg.PostgresError):
            raise sa_exc.DatabaseError(None, None, error) from error


class RequestDatabase:
    """The unit of work of one request: statements in autocommit until a use case opens the
    transaction; the session (for advanced-alchemy repositories) opens on first use; one commit."""

    __slots__ = ("_make_session", "_session", "engine", "route")

    def __init__(
        self, engine: AsyncEngine, make_session: Callable[[], AsyncSession], route: ReadRoute | None = None
    ) -> None:
        self.engine = engine
        self._make_session = make_session
        self._session: AsyncSession | None = None
        self.route = route  # where reads go when replicas are configured

    @classmethod
    def around(cls, session: AsyncSession) -> RequestDatabase:
        """A unit of work over an existing session (scripts and tests)."""
        database = cls(AsyncEngine(session.get_bind()), lambda: session)  # type: ignore[arg-type]
        database._session = session
        return database

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._make_session()
        return self._session

    def writes_for(self, user_id: int) -> None:
        """Name the user whose later reads must see this request's writes (a sign-in names them
        before the request carries their token)."""
        if self.route is not None:
            self.route.user_id = user_id

    async def all_or_nothing(self) -> None:
        """Open the request's transaction: every statement from now on commits with the request or
        not at all."""
        await self.session.connection()

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[Statements]:
        """An executor for one or more statements: in the request's transaction if it is open."""
        dialect = self.dialect
        if dialect.name != "postgresql":
            yield _SessionStatements(dialect, self.session)
        elif self._session is not None and self._session.in_transaction():
            yield _DriverStatements(dialect, await _joined(self._session))
        elif self.route is not None and (replica := await self.route.replica()) is not None:
            yield _ReplicaStatements(dialect, replica, self.route, self.engine)
        else:
            async with borrowed(self.engine) as connection:
                yield _DriverStatements(dialect, connection)

    async def commit(self) -> None:
        """Commit the transaction if one was opened; statements in autocommit have committed already."""
        if self._session is not None and self._session.in_transaction():
            await self._session.commit()

    async def close(self) -> None:
        """Release the session (rolling back whatever was not committed)."""
        if self._session is not None:
            await self._session.close()


async def _joined(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection of the session's transaction, with the transaction begun on it.

    SQLAlchemy's asyncpg adapter sends BEGIN only before its own first statement;
    a statement sent straight to the driver first would run outside the transaction.
    """
    pooled = await (await session.connection()).get_raw_connection()
    adapter: Any = pooled.dbapi_connection
    if not adapter._started:  # tests/unit/test_compat.py watches these two
        await adapter._start_transaction()
    return cast("asyncpg.Connection", pooled.driver_connection)


@asynccontextmanager
async def borrowed(
    engine: AsyncEngine, *, discard_on_error: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the engine's pool, for statements that each commit on their own.

    A connection the server closed, or a cancelled statement left in the middle of its exchange,
    never goes back to the pool; with `discard_on_error` (a replica's), no connection that saw an
    error does.
    """
    pool = engine.sync_engine.pool
    async with pool.turn() if isinstance(pool, FairQueuePool) else nullcontext():
        pooled = await greenlet_spawn(pool.connect)
        if cast("asyncpg.Connection", pooled.driver_connection).is_closed():  # the server ended it meanwhile
            pooled.invalidate()
            pooled = await greenlet_spawn(pool.connect)
        connection = cast("asyncpg.Connection", pooled.driver_connection)
        try:
            yield connection
        except BaseException as error:
            if (
                discard_on_error
                or connection.is_closed()
                or isinstance(error, asyncio.CancelledError)
                or getattr(error, "connection_invalidated", False)
            ):
                pooled.invalidate(error if isinstance(error, Exception) else None)
            raise
        finally:
            await greenlet_spawn(pooled.close)


class _FirstComeFirstServed(AsyncAdaptedQueue[Any]):
    """A pool queue that hands a returned connection to the longest waiter.

    asyncio's queue lets a request that has just arrived take a connection
    released for one that has waited; under load that stretches p99 several
    times over p50. Here nobody takes a connection while someone waits for one.
    """

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiting = 0
        self._line = asyncio.Lock()  # FIFO: its holder is the next to get a connection

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not self._waiting and not self._queue.empty():
            return self._queue.get_nowait()
        if not block:
            raise Empty
        self._waiting += 1
        try:
            return self.await_(self._in_turn(timeout))
        except TimeoutError as error:
            raise Empty from error
        finally:
            self._waiting -= 1

    async def _in_turn(self, seconds: float | None) -> Any:
        async with self._line, asyncio.timeout(seconds):
            return await self._queue.get()


class FairQueuePool(AsyncAdaptedQueuePool):
    """The engine's pool on PostgreSQL: first come, first served, for every checkout.

    The hot path (`borrowed`) first waits for a `turn()`, as a plain coroutine, and holds it while
    it holds the connection: under load, waiting inside the pool (in SQLAlchemy's greenlet) cost a
    quarter of the list's throughput (bench/RESULTS.md). Sessions check out inside the greenlet and
    wait in the queue's own line; a hot statement that finds a session holding the connection its
    turn stood for waits there too, in order.
    """

    _queue_class = _FirstComeFirstServed

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns: asyncio.Semaphore | None = None

    def turn(self) -> asyncio.Semaphore:
        """One permit per connection, granted in order of arrival."""
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.size())
        return self._turns


async def answers(engine: AsyncEngine) -> None:
    """Raise unless the database answers a query (the readiness check)."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
