"""Data access. Every task statement is scoped by its owner here, not only in the routes.

Writes are single statements (`UPDATE … WHERE id = :id AND user_id = :owner
RETURNING …`): atomic under concurrency, and another user's task is simply
no row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import (
    ColumnElement,
    Interval,
    Select,
    case,
    delete,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from todo_svc.db.models import IdempotencyRecord, Task, User

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


Versions = Collection[int] | None


ONE_MICROSECOND = literal(timedelta(microseconds=1), Interval())


def _changed(dialect: str) -> dict[str, Any]:
    """What every change of a task sets: a new version, and a later `updated_at`.

    On PostgreSQL the time is read while the row is locked (`clock_timestamp()`),
    so a change that waited behind another still lands strictly after it. SQLite
    runs one writer at a time; there the time is the application's, never earlier
    than the stored one.
    """
    if dialect == "postgresql":
        updated_at: ColumnElement[datetime] = func.greatest(
            func.clock_timestamp(), Task.updated_at + ONE_MICROSECOND, type_=Task.updated_at.type
        )
    else:
        now = datetime.now(UTC)
        updated_at = case((Task.updated_at > now, Task.updated_at), else_=now)
    return {"version": Task.version + 1, "updated_at": updated_at}


def _at_version(versions: Versions) -> tuple[ColumnElement[bool], ...]:
    return () if versions is None else (Task.version.in_(versions),)


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
        now = datetime.now(UTC)
        user = User(email=email, password_hash=password_hash, created_at=now, updated_at=now)
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
        now = datetime.now(UTC)
        task = Task(user_id=owner_id, **values, created_at=now, updated_at=now)
        self.session.add(task)
        try:
            await self.session.flush()
        except IntegrityError:
            return None
        return task

    async def update_owned(
        self, owner_id: int, task_id: int, values: dict[str, Any], versions: Versions = None
    ) -> Task | None:
        """Set `values` on the owner's task in one statement.

        `None` when there is no such task, or when `versions` is given and the
        task's version is not among them (the If-Match check, atomic with the write).
        """
        if task_id > MAX_ID:
            return None
        statement = (
            update(Task)
            .where(*self._owned(owner_id, task_id), *_at_version(versions))
            .values(**values, **_changed(self._dialect.name))
            .returning(Task)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def toggle_completed(self, owner_id: int, task_id: int, versions: Versions = None) -> Task | None:
        """Flip `completed` atomically: concurrent toggles never read a stale value."""
        return await self.update_owned(owner_id, task_id, {"completed": not_(Task.completed)}, versions)

    async def delete_owned(self, owner_id: int, task_id: int, versions: Versions = None) -> bool:
        if task_id > MAX_ID:
            return False
        statement = (
            delete(Task).where(*self._owned(owner_id, task_id), *_at_version(versions)).returning(Task.id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none() is not None

    async def create_many_owned(self, owner_id: int, rows: Sequence[dict[str, Any]]) -> Sequence[Task]:
        """Insert tasks in one statement, returned in the order given."""
        now = datetime.now(UTC)
        values = [
            {
                "completed": False,
                "description": None,
                **row,
                "user_id": owner_id,
                "created_at": now,
                "updated_at": now,
            }
            for row in rows
        ]
        statement = insert(Task).returning(Task, sort_by_parameter_order=True)
        try:
            return (await self.session.scalars(statement, values)).all()
        except IntegrityError:
            return []

    async def set_completed_many(
        self, owner_id: int, task_ids: Sequence[int], completed: bool
    ) -> Sequence[Task]:
        """Set `completed` on those of the ids that are the owner's tasks; returns the tasks changed."""
        statement = (
            update(Task)
            .where(Task.user_id == owner_id, Task.id.in_(task_ids))
            .values(completed=completed, **_changed(self._dialect.name))
            .returning(Task)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return (await self.session.scalars(statement)).all()

    async def delete_many_owned(self, owner_id: int, task_ids: Sequence[int]) -> Sequence[int]:
        """Delete those of the ids that are the owner's tasks; returns the ids deleted."""
        statement = delete(Task).where(Task.user_id == owner_id, Task.id.in_(task_ids)).returning(Task.id)
        return (await self.session.scalars(statement)).all()


class IdempotencyRepository(SQLAlchemyAsyncRepository[IdempotencyRecord]):
    model_type = IdempotencyRecord

    async def claim(self, owner_id: int, key: str) -> bool:
        """Hold the key for this transaction; `False` when a twin request holds it now.

        On PostgreSQL an advisory transaction lock, released by COMMIT or ROLLBACK
        (also of a crashed request); SQLite runs one writer at a time and relies on
        the unique constraint alone.
        """
        if self._dialect.name != "postgresql":
            return True
        lock = func.pg_try_advisory_xact_lock(self.lock_id(owner_id, key))
        return bool(await self.session.scalar(select(lock)))

    @staticmethod
    def lock_id(owner_id: int, key: str) -> int:
        """The key's advisory-lock number: a 64-bit hash of owner and key."""
        digest = hashlib.blake2b(f"{owner_id}:{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    async def find_live(self, owner_id: int, key: str, since: datetime) -> IdempotencyRecord | None:
        """The record of this key if it was made after `since`; an older one is deleted."""
        record = await self.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.user_id == owner_id, IdempotencyRecord.key == key
            )
        )
        if record is not None and record.created_at < since:
            await self.session.delete(record)
            await self.session.flush()
            return None
        return record

    async def save(self, record: IdempotencyRecord) -> bool:
        """Store the record; `False` when a twin stored one for the same key first."""
        self.session.add(record)
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError:
            return False
        return True
