"""The request's way to the database: its statements share the use case's transaction, and the pool
serves whoever waited first.

`test_canary_*` asserts SQLAlchemy behaviour that `todo_svc/db/database.py` works around; when one
fails after an upgrade, the workaround it names can go.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import Empty

from todo_svc.db.database import FairQueuePool, RequestDatabase
from todo_svc.db.tasks import TaskRepository
from todo_svc.db.users import UserRepository


@pytest.fixture
async def owner_id(session_maker: async_sessionmaker[AsyncSession]) -> int:
    """A committed account, visible to every connection."""
    async with session_maker() as setup:
        owner = await UserRepository(session=setup).create("ann@example.org", "not-a-real-hash")
        assert owner is not None
        await setup.commit()
    return owner.id


async def stored_titles(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.execute(text("SELECT title FROM tasks ORDER BY id"))).scalars())


async def test_canary_the_asyncpg_adapter_sends_begin_only_before_its_own_first_statement(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """`_joined` starts the transaction itself: SQLAlchemy's session has begun, the connection not yet."""
    async with session_maker() as session:
        pooled = await (await session.connection()).get_raw_connection()
        assert session.in_transaction()
        assert pooled.dbapi_connection._started is False  # type: ignore[union-attr]
        assert pooled.driver_connection.is_in_transaction() is False  # type: ignore[union-attr]


async def test_statements_in_an_opened_transaction_commit_or_roll_back_with_it(
    session_maker: async_sessionmaker[AsyncSession], engine: AsyncEngine, owner_id: int
) -> None:
    for commits in (False, True):
        database = RequestDatabase(engine, session_maker)
        await database.all_or_nothing()
        await TaskRepository(database).create_owned(owner_id, {"title": f"committed={commits}"})
        # The session's own statements and the driver's run in the one transaction.
        assert await database.session.scalar(text("SELECT count(*) FROM tasks")) == 1
        assert await stored_titles(engine) == []  # not visible outside it before the commit
        if commits:
            await database.commit()
        await database.close()

    assert await stored_titles(engine) == ["committed=True"]


async def test_a_batch_that_fails_part_way_leaves_nothing(
    session_maker: async_sessionmaker[AsyncSession], engine: AsyncEngine, owner_id: int
) -> None:
    database = RequestDatabase(engine, session_maker)
    rows = [{"title": "fits"}, {"title": "x" * 300}]  # the second is longer than the column
    with pytest.raises(Exception, match="too long"):
        await TaskRepository(database).create_many_owned(owner_id, rows)
    await database.close()
    assert await stored_titles(engine) == []


async def test_a_released_connection_goes_to_the_longest_waiter_not_a_newcomer() -> None:
    pool_queue = FairQueuePool._queue_class(1)
    waiter = asyncio.create_task(greenlet_spawn(pool_queue.get, True, 5))
    for _ in range(5):
        await asyncio.sleep(0)  # the waiter is now in line
    pool_queue.put_nowait("connection")
    # A checkout that arrives now, before the waiter has run again, finds nothing to take.
    with pytest.raises(Empty):
        await greenlet_spawn(pool_queue.get, False)
    assert await asyncio.wait_for(waiter, 5) == "connection"
    pool_queue.put_nowait("connection")
    assert await greenlet_spawn(pool_queue.get, True, 5) == "connection"  # nobody waits: at once
