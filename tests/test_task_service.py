"""TaskService on the real PostgreSQL test database, without the HTTP layer: every method scoped to its
owner, completing (a toggle is atomic under a race), and `updated_at` that only moves forward.

The fixtures (`task_service`, `db_session`, `ann_user`…) are in service_layer.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from service_layer import RETENTION, pair, stored_task
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from todo_svc.db.database import RequestDatabase
from todo_svc.db.models import User
from todo_svc.db.tasks import TaskQuery, TaskRepository
from todo_svc.db.users import UserRepository
from todo_svc.services.errors import AccountGone, TaskNotFound
from todo_svc.services.tasks import TaskService

# --- TaskService: ownership -------------------------------------------------------------------


async def test_another_owners_task_is_not_found_and_left_unchanged(
    db_session: AsyncSession, task_service: TaskService, ann_user: User, bob_user: User
) -> None:
    task = await task_service.create_task(ann_user.id, {"title": "Ann's", "description": "private"})
    before = await stored_task(db_session, task.id)

    attempts: dict[str, Callable[[], Awaitable[object]]] = {
        "get": lambda: task_service.get_task(bob_user.id, task.id),
        "update": lambda: task_service.update_task(
            bob_user.id, task.id, {"title": "Bob was here", "completed": True}
        ),
        "toggle": lambda: task_service.complete_task(bob_user.id, task.id, None),
        "complete": lambda: task_service.complete_task(bob_user.id, task.id, True),
        "delete": lambda: task_service.delete_task(bob_user.id, task.id),
    }
    for name, attempt in attempts.items():
        with pytest.raises(TaskNotFound) as raised:
            await attempt()
        assert str(raised.value) == f"Task {task.id} not found", name

    assert await stored_task(db_session, task.id) == before
    assert (await task_service.get_task(ann_user.id, task.id)).title == "Ann's"


@pytest.mark.parametrize("task_id", [999_999, 2**63 - 1, 2**63, 10**30])
async def test_unknown_task_ids_are_not_found(
    task_service: TaskService, ann_user: User, task_id: int
) -> None:
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: task_service.get_task(ann_user.id, task_id),
        lambda: task_service.update_task(ann_user.id, task_id, {"title": "x"}),
        lambda: task_service.complete_task(ann_user.id, task_id, None),
        lambda: task_service.complete_task(ann_user.id, task_id, True),
        lambda: task_service.delete_task(ann_user.id, task_id),
    ]
    for attempt in attempts:
        with pytest.raises(TaskNotFound):
            await attempt()


async def test_list_never_returns_another_owners_tasks(
    task_service: TaskService, ann_user: User, bob_user: User
) -> None:
    for i in range(3):
        await task_service.create_task(ann_user.id, {"title": f"shared word ann {i}"})
    for i in range(2):
        await task_service.create_task(bob_user.id, {"title": f"shared word bob {i}", "completed": True})

    for owner, expected in ((ann_user, 3), (bob_user, 2)):
        for query in (
            TaskQuery(),
            TaskQuery(q="shared"),
            TaskQuery(limit=1, offset=1),
            TaskQuery(completed=True),
            TaskQuery(sort="title"),
        ):
            items, total = pair(await task_service.list_tasks(owner.id, query))
            assert {t.user_id for t in items} <= {owner.id}, query
        items, total = pair(await task_service.list_tasks(owner.id, TaskQuery()))
        assert total == expected
        assert len(items) == expected
        assert all(t.user_id == owner.id for t in items)

    items, total = pair(await task_service.list_tasks(ann_user.id, TaskQuery(completed=True)))
    assert (list(items), total) == ([], 0)


async def test_create_task_for_a_missing_account_raises_account_gone(task_service: TaskService) -> None:
    with pytest.raises(AccountGone):
        await task_service.create_task(2_000_000_000, {"title": "orphan"})


# --- TaskService: completing ------------------------------------------------------------------


async def test_toggle_flips_completed_and_an_explicit_value_is_idempotent(
    db_session: AsyncSession, task_service: TaskService, ann_user: User
) -> None:
    task = await task_service.create_task(ann_user.id, {"title": "Toggle me"})
    assert task.completed is False

    assert (await task_service.complete_task(ann_user.id, task.id, None)).completed is True
    assert (await stored_task(db_session, task.id) or {})["completed"] is True
    assert (await task_service.complete_task(ann_user.id, task.id, None)).completed is False
    assert (await stored_task(db_session, task.id) or {})["completed"] is False

    assert (await task_service.complete_task(ann_user.id, task.id, True)).completed is True
    assert (await task_service.complete_task(ann_user.id, task.id, True)).completed is True
    assert (await task_service.complete_task(ann_user.id, task.id, False)).completed is False
    assert (await task_service.complete_task(ann_user.id, task.id, False)).completed is False


async def test_concurrent_toggles_are_atomic(
    session_maker: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    """Two toggles racing on one task flip it twice: the second sees the first, never a stale value."""
    async with session_maker() as setup:
        owner = await UserRepository(session=setup).create("racer@example.org", "not-a-real-hash")
        assert owner is not None
        task = await TaskService(TaskRepository(RequestDatabase.around(setup)), RETENTION).create_task(
            owner.id, {"title": "Race"}
        )
        await setup.commit()

    async with session_maker() as first, session_maker() as second, engine.connect() as observer:
        # Both in open transactions, so the hot statements join them and the row lock is held.
        await first.connection()
        await second.connection()
        flipped_first = await TaskService(
            TaskRepository(RequestDatabase.around(first)), RETENTION
        ).complete_task(owner.id, task.id, None)
        assert flipped_first.completed is True  # row now locked by `first`, not committed

        racing = asyncio.create_task(
            TaskService(TaskRepository(RequestDatabase.around(second)), RETENTION).complete_task(
                owner.id, task.id, None
            )
        )
        # Wait (bounded) until `second` is blocked on the row lock, so the race really happens.
        for _ in range(2000):
            if racing.done():
                break
            waiting = await observer.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            await observer.rollback()
            if waiting:
                break
            await asyncio.sleep(0.005)
        else:
            racing.cancel()
            pytest.fail("the second toggle never reached the database")
        assert not racing.done(), "the second toggle did not wait for the first one's row lock"

        await first.commit()
        flipped_second = await racing
        await second.commit()

    assert flipped_second.completed is False
    async with session_maker() as check:
        assert (await stored_task(check, task.id) or {})["completed"] is False


# --- TaskService: updated_at ------------------------------------------------------------------


async def test_update_moves_updated_at_forward_and_keeps_created_at(
    db_session: AsyncSession, task_service: TaskService, ann_user: User
) -> None:
    task = await task_service.create_task(ann_user.id, {"title": "Before"})
    created = await stored_task(db_session, task.id)
    assert created is not None

    updated = await task_service.update_task(ann_user.id, task.id, {"title": "After", "description": "d"})

    assert updated.title == "After"
    assert updated.description == "d"
    assert updated.updated_at > created["updated_at"]
    assert updated.created_at == created["created_at"]
    stored = await stored_task(db_session, task.id)
    assert stored is not None
    assert stored["title"] == "After"
    assert stored["updated_at"] == updated.updated_at
    assert stored["created_at"] == created["created_at"]


async def test_an_empty_patch_still_moves_updated_at(
    db_session: AsyncSession, task_service: TaskService, ann_user: User
) -> None:
    task = await task_service.create_task(ann_user.id, {"title": "Same"})
    before = await stored_task(db_session, task.id)
    assert before is not None

    touched = await task_service.update_task(ann_user.id, task.id, {})

    assert touched.title == "Same"
    assert touched.updated_at > before["updated_at"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda s, o, t: s.update_task(o, t, {"title": "changed"}), id="update"),
        pytest.param(lambda s, o, t: s.complete_task(o, t, None), id="toggle"),
        pytest.param(lambda s, o, t: s.complete_task(o, t, True), id="complete"),
    ],
)
async def test_updated_at_never_moves_backwards(
    db_session: AsyncSession, task_service: TaskService, ann_user: User, change: Any
) -> None:
    """A row stamped ahead of this server's clock (another server's skew) keeps its stamp or later."""
    task = await task_service.create_task(ann_user.id, {"title": "Skewed"})
    await db_session.execute(
        text("UPDATE tasks SET updated_at = now() + interval '1 hour' WHERE id = :id"), {"id": task.id}
    )
    future = (await stored_task(db_session, task.id) or {})["updated_at"]
    assert future > datetime.now(UTC) + timedelta(minutes=30)

    changed = await change(task_service, ann_user.id, task.id)

    assert changed.updated_at >= future
    assert (await stored_task(db_session, task.id) or {})["updated_at"] >= future
