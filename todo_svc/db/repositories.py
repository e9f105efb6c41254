"""Data access. Every task statement is scoped by its owner here, not only in the routes.

Writes are single statements (`UPDATE … WHERE id = :id AND user_id = :owner
RETURNING …`): atomic under concurrency, and another user's task is simply
no row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from advanced_alchemy.exceptions import IntegrityError as RepositoryIntegrityError
from advanced_alchemy.exceptions import NotFoundError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from todo_svc.db import task_statements as statements
from todo_svc.db.driver import CompiledStatement, Driver
from todo_svc.db.models import IdempotencyRecord, Task, User
from todo_svc.db.session import RequestDatabase
from todo_svc.db.task_statements import SortKey, TaskRecord

__all__ = (
    "MAX_ID",
    "IdempotencyRepository",
    "SortKey",
    "TaskQuery",
    "TaskRecord",
    "TaskRepository",
    "UserRepository",
    "Versions",
)

# PostgreSQL's BIGINT: ids past it can match no row, and asyncpg would refuse to send them.
MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Filters and paging of a task list."""

    completed: bool | None = None
    q: str | None = None
    sort: SortKey = "-created_at"
    limit: int = 50
    offset: int = 0


# The versions an If-Match accepts; `None` for an unconditional write.
Versions = Collection[int] | None


class UserRepository(SQLAlchemyAsyncRepository[User]):
    """Accounts, through advanced-alchemy's own methods (they translate the driver's errors)."""

    model_type = User

    async def get_by_email(self, email: str) -> User | None:
        return await self.get_one_or_none(func.lower(User.email) == email.lower())

    async def get_by_id(self, user_id: int) -> User | None:
        return await self.get_one_or_none(User.id == user_id) if user_id <= MAX_ID else None

    async def create(self, email: str, password_hash: str) -> User | None:
        """Insert a user; `None` when the email is already taken."""
        try:
            return await self.add(User(email=email, password_hash=password_hash), auto_refresh=False)
        except RepositoryIntegrityError:  # the unique index on lower(email)
            return None

    async def delete_by_id(self, user_id: int) -> bool:
        """Delete the account; its tasks, sessions and idempotency records go with it (ON DELETE CASCADE)."""
        try:
            await self.delete(user_id)
        except NotFoundError:
            return False
        return True


class TaskRepository:
    """Owner-scoped task statements: every method takes the owner, none reaches a task without it.

    Not an advanced-alchemy repository: its generic `get/update/delete(item_id)` would be
    unscoped. Single statements run through the `Driver` (see `db/driver.py`); the batch ones
    through the request's session, so that a batch stays all or nothing.
    """

    __slots__ = ("_database", "_driver")

    def __init__(self, database: RequestDatabase) -> None:
        self._database = database
        self._driver = Driver(database)

    async def get_owned(self, owner_id: int, task_id: int) -> TaskRecord | None:
        if task_id > MAX_ID:
            return None
        return _record(await self._driver.fetch_one(statements.GET_OWNED, owner_id=owner_id, task_id=task_id))

    async def page_owned(self, owner_id: int, query: TaskQuery) -> tuple[list[TaskRecord], int]:
        """One page of a user's tasks and the number of all that match the filters, from one read.

        A first page that is not full is the whole list: its length is the number. Otherwise the
        page is read with the number on every row; a page past the end has no row to carry it,
        and is counted on its own (there is no item it could disagree with).
        """
        filtered, searched = query.completed is not None, bool(query.q)
        params = {
            "owner_id": owner_id,
            "completed": query.completed,
            "pattern": statements.contains_pattern(query.q) if query.q else None,
            "limit": query.limit,
            "offset": query.offset,
        }
        async with self._driver.borrow() as run:
            if query.offset == 0:
                rows = await run.fetch_all(statements.list_page(filtered, searched, query.sort), **params)
                if len(rows) < query.limit:
                    return [TaskRecord(*row) for row in rows], len(rows)
            counted = statements.list_page(filtered, searched, query.sort, counted=True)
            if rows := await run.fetch_all(counted, **params):
                return [TaskRecord(*row[:-1]) for row in rows], int(rows[0][-1])
            total = await run.fetch_value(statements.list_count(filtered, searched), **params)
        return [], int(total)

    async def create_owned(self, owner_id: int, values: dict[str, Any]) -> TaskRecord | None:
        """Insert a task; `None` when the owner no longer exists."""
        params = {"description": None, "completed": False, **values}
        try:
            row = await self._driver.fetch_one(
                statements.INSERT, owner_id=owner_id, now=datetime.now(UTC), **params
            )
        except IntegrityError:
            return None
        return _record(row)

    async def update_owned(
        self, owner_id: int, task_id: int, values: dict[str, Any], versions: Versions = None
    ) -> TaskRecord | None:
        """Set `values` on the owner's task in one statement.

        `None` when there is no such task, or when `versions` is given and the
        task's version is not among them (the If-Match check, atomic with the write).
        """
        statement = statements.update_owned(
            self._database.dialect.name, frozenset(values), versions is not None
        )
        return await self._change(statement, owner_id, task_id, versions, **values)

    async def toggle_completed(
        self, owner_id: int, task_id: int, versions: Versions = None
    ) -> TaskRecord | None:
        statement = statements.toggle_owned(self._database.dialect.name, versions is not None)
        return await self._change(statement, owner_id, task_id, versions)

    async def _change(
        self, statement: CompiledStatement, owner_id: int, task_id: int, versions: Versions, **values: Any
    ) -> TaskRecord | None:
        if task_id > MAX_ID:
            return None
        row = await self._driver.fetch_one(
            statement,
            owner_id=owner_id,
            task_id=task_id,
            versions=list(versions or ()),
            now=datetime.now(UTC),
            **values,
        )
        return _record(row)

    async def delete_owned(self, owner_id: int, task_id: int, versions: Versions = None) -> bool:
        if task_id > MAX_ID:
            return False
        statement = statements.delete_owned(self._database.dialect.name, versions is not None)
        deleted = await self._driver.fetch_value(
            statement, owner_id=owner_id, task_id=task_id, versions=list(versions or ())
        )
        return deleted is not None

    async def create_many_owned(self, owner_id: int, rows: Sequence[dict[str, Any]]) -> list[TaskRecord]:
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
        statement = insert(Task).returning(*statements.TASK_COLUMNS, sort_by_parameter_order=True)
        try:
            return [TaskRecord(*row) for row in await self._database.session.execute(statement, values)]
        except IntegrityError:
            return []

    async def set_completed_many(
        self, owner_id: int, task_ids: Sequence[int], completed: bool
    ) -> list[TaskRecord]:
        """Set `completed` on those of the ids that are the owner's tasks; returns the tasks changed."""
        statement = statements.set_completed_many(self._database.dialect.name)
        params = {
            "owner_id": owner_id,
            "task_ids": list(task_ids),
            "completed": completed,
            "now": datetime.now(UTC),
        }
        return [TaskRecord(*row) for row in await self._database.session.execute(statement, params)]

    async def delete_many_owned(self, owner_id: int, task_ids: Sequence[int]) -> Sequence[int]:
        """Delete those of the ids that are the owner's tasks; returns the ids deleted."""
        statement = delete(Task).where(Task.user_id == owner_id, Task.id.in_(task_ids)).returning(Task.id)
        return (await self._database.session.scalars(statement)).all()


def _record(row: Sequence[Any] | None) -> TaskRecord | None:
    return TaskRecord(*row) if row is not None else None


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
