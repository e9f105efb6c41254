"""Data access. Every task statement is scoped by its owner here, not only in the routes.

Writes are single statements (`UPDATE … WHERE id = :id AND user_id = :owner
RETURNING …`): atomic under concurrency, and another user's task is simply
no row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, Select, case, delete, func, not_, or_, select, update
from sqlalchemy.exc import IntegrityError

from todo_svc.db.models import Task, User

# PostgreSQL's BIGINT: ids past it can match no row, and asyncpg would refuse to send them.
MAX_ID = 2**63 - 1

SortKey = Literal["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Filters and paging of a task list."""

    completed: bool | None = None
    q: str | None = None
    sort: SortKey = "-created_at"
    limit: int = 50
    offset: int = 0


def _moved_forward(now: datetime) -> ColumnElement[datetime]:
    """`updated_at` for a change: now, but never earlier than it already is."""
    return case((Task.updated_at > now, Task.updated_at), else_=now)


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User

    async def get_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(func.lower(User.email) == email.lower()))

    async def get_by_id(self, user_id: int) -> User | None:
        if user_id > MAX_ID:
            return None
        return await self.session.get(User, user_id)

    async def create(self, email: str, password_hash: str) -> User | None:
        """Insert a user; `None` when the email is already taken."""
        user = User(email=email, password_hash=password_hash)
        self.session.add(user)
        try:
            await self.session.flush()
        except IntegrityError:
            return None
        return user

    async def delete_by_id(self, user_id: int) -> bool:
        result = await self.session.execute(delete(User).where(User.id == user_id).returning(User.id))
        return result.scalar_one_or_none() is not None


class TaskRepository(SQLAlchemyAsyncRepository[Task]):
    model_type = Task

    @staticmethod
    def _owned(owner_id: int, task_id: int) -> tuple[ColumnElement[bool], ...]:
        return Task.id == task_id, Task.user_id == owner_id

    async def get_owned(self, owner_id: int, task_id: int) -> Task | None:
        if task_id > MAX_ID:
            return None
        return await self.session.scalar(select(Task).where(*self._owned(owner_id, task_id)))

    async def page_owned(self, owner_id: int, query: TaskQuery) -> tuple[Sequence[Task], int]:
        """One page of a user's tasks and the number of all that match the filters."""
        filtered = select(Task).where(Task.user_id == owner_id, *self._filters(query))
        column = getattr(Task, query.sort.lstrip("-"))
        descending = query.sort.startswith("-")
        ordered = filtered.order_by(
            column.desc() if descending else column.asc(), Task.id.desc() if descending else Task.id.asc()
        )
        items = (await self.session.scalars(ordered.limit(query.limit).offset(query.offset))).all()
        if query.offset == 0 and len(items) < query.limit:
            return items, len(items)
        return items, await self._count(filtered)

    async def _count(self, filtered: Select[Task]) -> int:
        counted = filtered.with_only_columns(func.count()).order_by(None)
        return int(await self.session.scalar(counted) or 0)

    @staticmethod
    def _filters(query: TaskQuery) -> list[ColumnElement[bool]]:
        filters: list[ColumnElement[bool]] = []
        if query.completed is not None:
            filters.append(Task.completed == query.completed)
        if query.q:
            filters.append(
                or_(
                    Task.title.icontains(query.q, autoescape=True),
                    Task.description.icontains(query.q, autoescape=True),
                )
            )
        return filters

    async def create_owned(self, owner_id: int, values: dict[str, Any]) -> Task | None:
        """Insert a task; `None` when the owner no longer exists."""
        task = Task(user_id=owner_id, **values)
        self.session.add(task)
        try:
            await self.session.flush()
        except IntegrityError:
            return None
        return task

    async def update_owned(self, owner_id: int, task_id: int, values: dict[str, Any]) -> Task | None:
        """Set `values` on the owner's task in one statement; `None` when there is no such task."""
        if task_id > MAX_ID:
            return None
        now = datetime.now(UTC)
        statement = (
            update(Task)
            .where(*self._owned(owner_id, task_id))
            .values(**values, updated_at=_moved_forward(now))
            .returning(Task)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def toggle_completed(self, owner_id: int, task_id: int) -> Task | None:
        """Flip `completed` atomically: concurrent toggles never read a stale value."""
        return await self.update_owned(owner_id, task_id, {"completed": not_(Task.completed)})

    async def delete_owned(self, owner_id: int, task_id: int) -> bool:
        if task_id > MAX_ID:
            return False
        result = await self.session.execute(
            delete(Task).where(*self._owned(owner_id, task_id)).returning(Task.id)
        )
        return result.scalar_one_or_none() is not None
