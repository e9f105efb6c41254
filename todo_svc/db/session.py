"""The request's database access: the engine at once, a session only when a use case needs one.

Most requests run one statement on the driver (see `driver.py`) and never need
an ORM session; creating and closing one anyway cost more CPU than the query.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


class RequestDatabase:
    """The unit of work of one request: its session opens on first use and commits once."""

    __slots__ = ("_make_session", "_session", "engine")

    def __init__(self, engine: AsyncEngine, make_session: Callable[[], AsyncSession]) -> None:
        self.engine = engine
        self._make_session = make_session
        self._session: AsyncSession | None = None

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

    def in_transaction(self) -> bool:
        return self._session is not None and self._session.in_transaction()

    async def commit(self) -> None:
        """Commit what the session did; statements that ran in autocommit have committed already."""
        if self.in_transaction():
            await self.session.commit()

    async def close(self) -> None:
        """Release the session (rolling back whatever was not committed)."""
        if self._session is not None:
            await self._session.close()


async def answers(engine: AsyncEngine) -> None:
    """Raise unless the database answers a query (the readiness check)."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
