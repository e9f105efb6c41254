"""The service layer on the real PostgreSQL test database, without the HTTP layer.

Each test works in its own session and rolls it back; tests that need committed
rows (concurrency) commit, and every test ends with the tables emptied.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import empty_tables
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from todo_svc.core.security import PasswordHasher
from todo_svc.db.models import User
from todo_svc.db.repositories import TaskQuery, TaskRepository, UserRepository
from todo_svc.db.session import RequestDatabase
from todo_svc.services.auth import AuthService
from todo_svc.services.errors import AccountGone, EmailTaken, InvalidCredentials, TaskNotFound
from todo_svc.services.tasks import TaskService

PASSWORD = "correct horse battery"


@pytest.fixture
async def sessions(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    assert engine.dialect.name == "postgresql"
    # The same session options as the app (todo_svc.db.config.database_config).
    yield async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    await empty_tables(engine)
    async with engine.connect() as connection:
        counts = (
            await connection.execute(
                text("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tasks)")
            )
        ).one()
    assert tuple(counts) == (0, 0)


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as db_session:
        yield db_session
        await db_session.rollback()


@pytest.fixture
async def hasher() -> AsyncIterator[PasswordHasher]:
    password_hasher = PasswordHasher(rounds=4, workers=2)
    yield password_hasher
    password_hasher.close()


@pytest.fixture
def auth(session: AsyncSession, hasher: PasswordHasher) -> AuthService:
    return AuthService(UserRepository(session=session), hasher)


@pytest.fixture
def tasks(session: AsyncSession) -> TaskService:
    return TaskService(TaskRepository(RequestDatabase.around(session)))


@pytest.fixture
async def ann(auth: AuthService) -> User:
    return await auth.register("ann@example.org", PASSWORD)


@pytest.fixture
async def bob(auth: AuthService) -> User:
    return await auth.register("bob@example.org", PASSWORD)


async def stored_task(session: AsyncSession, task_id: int) -> dict[str, Any] | None:
    """The row as the database has it, bypassing the session's identity map."""
    row = (
        await session.execute(
            text(
                "SELECT user_id, title, description, completed, created_at, updated_at "
                "FROM tasks WHERE id = :id"
            ),
            {"id": task_id},
        )
    ).one_or_none()
    return None if row is None else dict(row._mapping)


async def count_tasks(session: AsyncSession, owner_id: int) -> int:
    result = await session.scalar(text("SELECT count(*) FROM tasks WHERE user_id = :id"), {"id": owner_id})
    return int(result or 0)


# --- TaskService: ownership -------------------------------------------------------------------


async def test_another_owners_task_is_not_found_and_left_unchanged(
    session: AsyncSession, tasks: TaskService, ann: User, bob: User
) -> None:
    task = await tasks.create_task(ann.id, {"title": "Ann's", "description": "private"})
    before = await stored_task(session, task.id)

    attempts: dict[str, Callable[[], Awaitable[object]]] = {
        "get": lambda: tasks.get_task(bob.id, task.id),
        "update": lambda: tasks.update_task(bob.id, task.id, {"title": "Bob was here", "completed": True}),
        "toggle": lambda: tasks.complete_task(bob.id, task.id, None),
        "complete": lambda: tasks.complete_task(bob.id, task.id, True),
        "delete": lambda: tasks.delete_task(bob.id, task.id),
    }
    for name, attempt in attempts.items():
        with pytest.raises(TaskNotFound) as raised:
            await attempt()
        assert str(raised.value) == f"Task {task.id} not found", name

    assert await stored_task(session, task.id) == before
    assert (await tasks.get_task(ann.id, task.id)).title == "Ann's"


@pytest.mark.parametrize("task_id", [999_999, 2**63 - 1, 2**63, 10**30])
async def test_unknown_task_ids_are_not_found(tasks: TaskService, ann: User, task_id: int) -> None:
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: tasks.get_task(ann.id, task_id),
        lambda: tasks.update_task(ann.id, task_id, {"title": "x"}),
        lambda: tasks.complete_task(ann.id, task_id, None),
        lambda: tasks.complete_task(ann.id, task_id, True),
        lambda: tasks.delete_task(ann.id, task_id),
    ]
    for attempt in attempts:
        with pytest.raises(TaskNotFound):
            await attempt()


async def test_list_never_returns_another_owners_tasks(tasks: TaskService, ann: User, bob: User) -> None:
    for i in range(3):
        await tasks.create_task(ann.id, {"title": f"shared word ann {i}"})
    for i in range(2):
        await tasks.create_task(bob.id, {"title": f"shared word bob {i}", "completed": True})

    for owner, expected in ((ann, 3), (bob, 2)):
        for query in (
            TaskQuery(),
            TaskQuery(q="shared"),
            TaskQuery(limit=1, offset=1),
            TaskQuery(completed=True),
            TaskQuery(sort="title"),
        ):
            items, total = await tasks.list_tasks(owner.id, query)
            assert {t.user_id for t in items} <= {owner.id}, query
        items, total = await tasks.list_tasks(owner.id, TaskQuery())
        assert total == expected
        assert len(items) == expected
        assert all(t.user_id == owner.id for t in items)

    items, total = await tasks.list_tasks(ann.id, TaskQuery(completed=True))
    assert (list(items), total) == ([], 0)


async def test_create_task_for_a_missing_account_raises_account_gone(tasks: TaskService) -> None:
    with pytest.raises(AccountGone):
        await tasks.create_task(2_000_000_000, {"title": "orphan"})


# --- TaskService: completing ------------------------------------------------------------------


async def test_toggle_flips_completed_and_an_explicit_value_is_idempotent(
    session: AsyncSession, tasks: TaskService, ann: User
) -> None:
    task = await tasks.create_task(ann.id, {"title": "Toggle me"})
    assert task.completed is False

    assert (await tasks.complete_task(ann.id, task.id, None)).completed is True
    assert (await stored_task(session, task.id) or {})["completed"] is True
    assert (await tasks.complete_task(ann.id, task.id, None)).completed is False
    assert (await stored_task(session, task.id) or {})["completed"] is False

    assert (await tasks.complete_task(ann.id, task.id, True)).completed is True
    assert (await tasks.complete_task(ann.id, task.id, True)).completed is True
    assert (await tasks.complete_task(ann.id, task.id, False)).completed is False
    assert (await tasks.complete_task(ann.id, task.id, False)).completed is False


async def test_concurrent_toggles_are_atomic(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    """Two toggles racing on one task flip it twice: the second sees the first, never a stale value."""
    async with sessions() as setup:
        owner = await UserRepository(session=setup).create("racer@example.org", "not-a-real-hash")
        assert owner is not None
        task = await TaskService(TaskRepository(RequestDatabase.around(setup))).create_task(
            owner.id, {"title": "Race"}
        )
        await setup.commit()

    async with sessions() as first, sessions() as second, engine.connect() as observer:
        # Both in open transactions, so the hot statements join them and the row lock is held.
        await first.connection()
        await second.connection()
        flipped_first = await TaskService(TaskRepository(RequestDatabase.around(first))).complete_task(
            owner.id, task.id, None
        )
        assert flipped_first.completed is True  # row now locked by `first`, not committed

        racing = asyncio.create_task(
            TaskService(TaskRepository(RequestDatabase.around(second))).complete_task(owner.id, task.id, None)
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
    async with sessions() as check:
        assert (await stored_task(check, task.id) or {})["completed"] is False


# --- TaskService: updated_at ------------------------------------------------------------------


async def test_update_moves_updated_at_forward_and_keeps_created_at(
    session: AsyncSession, tasks: TaskService, ann: User
) -> None:
    task = await tasks.create_task(ann.id, {"title": "Before"})
    created = await stored_task(session, task.id)
    assert created is not None

    updated = await tasks.update_task(ann.id, task.id, {"title": "After", "description": "d"})

    assert updated.title == "After"
    assert updated.description == "d"
    assert updated.updated_at > created["updated_at"]
    assert updated.created_at == created["created_at"]
    stored = await stored_task(session, task.id)
    assert stored is not None
    assert stored["title"] == "After"
    assert stored["updated_at"] == updated.updated_at
    assert stored["created_at"] == created["created_at"]


async def test_an_empty_patch_still_moves_updated_at(
    session: AsyncSession, tasks: TaskService, ann: User
) -> None:
    task = await tasks.create_task(ann.id, {"title": "Same"})
    before = await stored_task(session, task.id)
    assert before is not None

    touched = await tasks.update_task(ann.id, task.id, {})

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
    session: AsyncSession, tasks: TaskService, ann: User, change: Any
) -> None:
    """A row stamped ahead of this server's clock (another server's skew) keeps its stamp or later."""
    task = await tasks.create_task(ann.id, {"title": "Skewed"})
    await session.execute(
        text("UPDATE tasks SET updated_at = now() + interval '1 hour' WHERE id = :id"), {"id": task.id}
    )
    future = (await stored_task(session, task.id) or {})["updated_at"]
    assert future > datetime.now(UTC) + timedelta(minutes=30)

    changed = await change(tasks, ann.id, task.id)

    assert changed.updated_at >= future
    assert (await stored_task(session, task.id) or {})["updated_at"] >= future


# --- TaskService: listing ---------------------------------------------------------------------


async def test_list_total_counts_every_match_also_past_the_last_page(tasks: TaskService, ann: User) -> None:
    for i in range(5):
        await tasks.create_task(ann.id, {"title": f"task {i}", "completed": i < 3})

    items, total = await tasks.list_tasks(ann.id, TaskQuery())
    assert (len(items), total) == (5, 5)

    cases = [
        (TaskQuery(completed=True, limit=2), 2, 3),
        (TaskQuery(completed=True, limit=2, offset=2), 1, 3),
        (TaskQuery(completed=True, limit=2, offset=3), 0, 3),
        (TaskQuery(completed=True, limit=2, offset=100), 0, 3),
        (TaskQuery(completed=False), 2, 2),
        (TaskQuery(completed=False, offset=1), 1, 2),
        (TaskQuery(limit=1), 1, 5),
        (TaskQuery(offset=5), 0, 5),
        (TaskQuery(offset=50, limit=100), 0, 5),
        (TaskQuery(q="task 4"), 1, 1),
        (TaskQuery(q="task", completed=False, offset=10), 0, 2),
        (TaskQuery(q="nothing like it"), 0, 0),
    ]
    for query, page_size, total in cases:
        items, counted = await tasks.list_tasks(ann.id, query)
        assert (len(items), counted) == (page_size, total), query


async def test_list_pages_cover_every_task_exactly_once(tasks: TaskService, ann: User) -> None:
    created = {(await tasks.create_task(ann.id, {"title": f"t{i}"})).id for i in range(7)}
    seen: list[int] = []
    for offset in range(0, 9, 3):
        items, total = await tasks.list_tasks(ann.id, TaskQuery(limit=3, offset=offset))
        assert total == 7
        seen += [t.id for t in items]
    assert sorted(seen) == sorted(created)


async def test_q_matches_percent_and_underscore_literally(tasks: TaskService, ann: User) -> None:
    titles = ["100% done", "1000 done", "snake_case", "snakeXcase", "plain"]
    for title in titles:
        await tasks.create_task(ann.id, {"title": title})
    await tasks.create_task(ann.id, {"title": "described", "description": "50%_off"})

    async def titles_for(q: str) -> set[str]:
        items, total = await tasks.list_tasks(ann.id, TaskQuery(q=q))
        assert total == len(items)
        return {t.title for t in items}

    assert await titles_for("%") == {"100% done", "described"}
    assert await titles_for("0%") == {"100% done", "described"}
    assert await titles_for("_") == {"snake_case", "described"}
    assert await titles_for("e_c") == {"snake_case"}
    assert await titles_for("%_") == {"described"}
    assert await titles_for("\\") == set()
    assert await titles_for("SNAKE") == {"snake_case", "snakeXcase"}  # case-insensitive
    assert await titles_for("off") == {"described"}  # description too


async def test_list_sorts_with_ties_broken_by_id(
    session: AsyncSession, tasks: TaskService, ann: User
) -> None:
    ids = [(await tasks.create_task(ann.id, {"title": title})).id for title in ("b", "a", "c")]
    items, _ = await tasks.list_tasks(ann.id, TaskQuery(sort="title"))
    assert [t.title for t in items] == ["a", "b", "c"]
    items, _ = await tasks.list_tasks(ann.id, TaskQuery(sort="-title"))
    assert [t.title for t in items] == ["c", "b", "a"]

    # Same timestamps everywhere: the order is decided by id alone.
    await session.execute(
        text("UPDATE tasks SET created_at = '2026-01-01T00:00:00Z', updated_at = '2026-01-01T00:00:00Z'")
    )
    for sort, expected in (
        ("-created_at", sorted(ids, reverse=True)),
        ("created_at", sorted(ids)),
        ("-updated_at", sorted(ids, reverse=True)),
        ("updated_at", sorted(ids)),
    ):
        items, _ = await tasks.list_tasks(ann.id, TaskQuery(sort=sort))  # type: ignore[arg-type]
        assert [t.id for t in items] == expected, sort


# --- AuthService ------------------------------------------------------------------------------


async def test_register_normalises_the_email_and_hashes_the_password(auth: AuthService) -> None:
    user = await auth.register("  Ann.Smith@Example.ORG ", PASSWORD)

    assert user.id is not None
    assert user.email == "ann.smith@example.org"
    assert user.password_hash != PASSWORD
    assert user.password_hash.startswith("$2b$")
    assert (await auth.get_account(user.id)).email == "ann.smith@example.org"


@pytest.mark.parametrize("again", ["ann@example.org", "ANN@EXAMPLE.ORG", "  Ann@Example.org  "])
async def test_register_an_existing_email_in_any_case_is_taken(
    session: AsyncSession, auth: AuthService, again: str
) -> None:
    await auth.register("Ann@example.org", PASSWORD)
    with pytest.raises(EmailTaken):
        await auth.register(again, "another password")
    assert await session.scalar(text("SELECT count(*) FROM users")) == 1


async def test_register_losing_a_race_is_email_taken(
    session: AsyncSession, auth: AuthService, hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique index on lower(email) catches a twin registration the lookup missed."""
    await auth.register("ann@example.org", PASSWORD)

    async def missed(self: UserRepository, email: str) -> None:
        return None

    monkeypatch.setattr(UserRepository, "get_by_email", missed)
    with pytest.raises(EmailTaken):
        await auth.register("ANN@example.org", PASSWORD)


async def test_authenticate(auth: AuthService) -> None:
    user = await auth.register("ann@example.org", PASSWORD)

    assert (await auth.authenticate("ann@example.org", PASSWORD)).id == user.id
    assert (await auth.authenticate("  ANN@Example.org ", PASSWORD)).id == user.id

    with pytest.raises(InvalidCredentials) as wrong_password:
        await auth.authenticate("ann@example.org", PASSWORD + "!")
    with pytest.raises(InvalidCredentials) as unknown_email:
        await auth.authenticate("nobody@example.org", PASSWORD)
    assert str(wrong_password.value) == str(unknown_email.value)  # no account enumeration


async def test_delete_account_cascades_to_tasks_and_spares_others(
    session: AsyncSession, auth: AuthService, tasks: TaskService, ann: User, bob: User
) -> None:
    for i in range(3):
        await tasks.create_task(ann.id, {"title": f"ann {i}"})
    bobs = await tasks.create_task(bob.id, {"title": "bob's"})

    await auth.delete_account(ann.id)

    assert await count_tasks(session, ann.id) == 0
    assert await session.scalar(text("SELECT count(*) FROM users WHERE id = :id"), {"id": ann.id}) == 0
    assert await count_tasks(session, bob.id) == 1
    assert (await tasks.get_task(bob.id, bobs.id)).title == "bob's"
    with pytest.raises(AccountGone):
        await auth.delete_account(ann.id)
    with pytest.raises(InvalidCredentials):
        await auth.authenticate("ann@example.org", PASSWORD)
    with pytest.raises(AccountGone):
        await auth.get_account(ann.id)
    session.expunge_all()
    with pytest.raises(AccountGone):
        await auth.get_account(ann.id)


async def test_get_account_of_an_unknown_id_is_gone(auth: AuthService) -> None:
    for user_id in (123_456, 2**63):
        with pytest.raises(AccountGone):
            await auth.get_account(user_id)
