"""Fixtures for tests of the service layer on the real PostgreSQL test database, without the HTTP layer.

Loaded by conftest.py (`pytest_plugins`), so every module can ask for them; their names say they are
the service layer's (`ann_user` is a `User` row, where conftest's `ann` is an account behind the API).
Each test works in its own session (`db_session`) and rolls it back; tests that need committed rows
open their own from `session_maker`, and every test that uses it ends with the tables emptied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import empty_tables
from helpers import PASSWORD
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from todo_svc.api.auth import TokenIssuer, build_jwt_auth
from todo_svc.core.passwords import PasswordHasher
from todo_svc.db.database import RequestDatabase
from todo_svc.db.models import User
from todo_svc.db.refresh_tokens import RefreshTokenRepository
from todo_svc.db.tasks import TaskRepository
from todo_svc.db.users import UserRepository
from todo_svc.services.auth import AuthService
from todo_svc.services.sessions import SessionService
from todo_svc.services.tasks import TaskListPage, TaskRecord, TaskService
from todo_svc.settings import Settings

RETENTION = Settings().tombstone_retention  # the default TASK_TOMBSTONE_RETENTION_DAYS


@pytest.fixture
async def session_maker(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
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
async def db_session(session_maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with session_maker() as session:
        yield session
        await session.rollback()


@pytest.fixture
def auth_service(db_session: AsyncSession, hasher: PasswordHasher, settings: Settings) -> AuthService:
    """As the app builds it: sessions in the refresh-token table, access tokens signed with its JWT auth."""
    sessions = SessionService(RefreshTokenRepository(session=db_session), timedelta(days=1))
    return AuthService(
        UserRepository(session=db_session), hasher, sessions, TokenIssuer(build_jwt_auth(settings))
    )


@pytest.fixture
def task_service(db_session: AsyncSession) -> TaskService:
    return TaskService(TaskRepository(RequestDatabase.around(db_session)), RETENTION)


@pytest.fixture
async def ann_user(auth_service: AuthService) -> User:
    return (await auth_service.register("ann@example.org", PASSWORD)).user


@pytest.fixture
async def bob_user(auth_service: AuthService) -> User:
    return (await auth_service.register("bob@example.org", PASSWORD)).user


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


def pair(page: TaskListPage) -> tuple[list[TaskRecord], int]:
    """A list page as (its tasks, the number of all that match)."""
    return page.items, page.total
