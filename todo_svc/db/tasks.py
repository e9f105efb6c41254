"""Tasks: the owner-scoped statements, and the repository that runs them.

Every statement is built once per shape from the `tasks` table, scoped by
`:owner_id`, and names its columns: a row is read into a `TaskRecord` by column
name, and a write sets the columns it is given by name. A column added to the
model (and its migration) is read, returned and written like the others.
Writes are single statements (`UPDATE … WHERE id = :task_id AND user_id =
:owner_id RETURNING …`): atomic under concurrency, and another user's task is
simply no row.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, cast

import msgspec
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Interval,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    not_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import BindParameter

from todo_svc.db.database import CompiledStatement, RequestDatabase, Row, Statements
from todo_svc.db.models import MAX_ID, Task
from todo_svc.db.task_lists import CHANGES_SO_FAR, SortKey, changes_since, contains_pattern, list_page

if TYPE_CHECKING:
    from sqlalchemy import Column

__all__ = (
    "MAX_ID",
    "SortKey",
    "TaskChanges",
    "TaskListPage",
    "TaskQuery",
    "TaskRecord",
    "TaskRepository",
    "Versions",
    "insert_tasks",
)

tasks = cast("Table", Task.__table__)
ONE_MICROSECOND = literal(timedelta(microseconds=1), Interval())


class TaskRecord(Protocol):
    """A task as read: one attribute per column of `tasks`. Typed here: those the code reads."""

    @property
    def id(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def completed(self) -> bool: ...


def _python_type(column: Column[Any]) -> Any:
    return column.type.python_type | None if column.nullable else column.type.python_type


# The runtime type of every `TaskRecord`: a frozen struct with a field per column, made from the table.
_TaskRow = msgspec.defstruct(
    "TaskRecord", [(column.name, _python_type(column)) for column in tasks.c], frozen=True, module=__name__
)


def _record(row: Row) -> TaskRecord:
    return cast("TaskRecord", msgspec.convert(dict(row), _TaskRow))


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Filters and paging of a task list: from `offset`, or `after` a position in the sort order
    (the sort column's value and the id of the last task seen)."""

    completed: bool | None = None
    q: str | None = None
    sort: SortKey = "-created_at"
    limit: int = 50
    offset: int = 0
    after: tuple[Any, int] | None = None


@dataclass(frozen=True, slots=True)
class TaskListPage:
    """A page, and from the same read the number of all the matching tasks and the owner's change
    number (which moves with every change of any of their tasks). `more`: tasks follow the page."""

    items: list[TaskRecord]
    total: int
    changes: int
    more: bool


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """The owner's changes after a change number, in order: the tasks (as they are now) and the ids
    deleted; `position` is the change number they bring the reader up to; `more`: others follow."""

    changed: list[TaskRecord]
    deleted: list[int]
    position: int
    more: bool


# The versions an If-Match accepts; `None` for an unconditional write.
Versions = Collection[int] | None


def _in(column: Column[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """`column` is one of the list parameter `:name` (one statement whatever the list's length)."""
    if dialect == "postgresql":
        return column == func.any(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def _owned(*, conditional: bool = False, dialect: str = "") -> list[ColumnElement[bool]]:
    """The owner's task `:task_id`; with `conditional`, only at one of `:versions` (If-Match)."""
    where = [and_(tasks.c.id == bindparam("task_id"), tasks.c.user_id == bindparam("owner_id"))]
    if conditional:
        where.append(_in(tasks.c.version, "versions", dialect))
    return where


def _changed(dialect: str) -> dict[str, Any]:
    """What every change of a task sets: a new version, and a later `updated_at`.

    On PostgreSQL the time is read while the row is locked (`clock_timestamp()`),
    so a change that waited behind another still lands strictly after it. SQLite
    runs one writer at a time; there the time is the `:now` given, never earlier
    than the stored one.
    """
    if dialect == "postgresql":
        updated_at: ColumnElement[datetime] = func.greatest(
            func.clock_timestamp(), tasks.c.updated_at + ONE_MICROSECOND, type_=tasks.c.updated_at.type
        )
    else:
        now = bindparam("now", type_=tasks.c.updated_at.type)
        updated_at = case((tasks.c.updated_at > now, tasks.c.updated_at), else_=now)
    return {"version": tasks.c.version + 1, "updated_at": updated_at}


def _set(columns: frozenset[str]) -> dict[str, BindParameter[Any]]:
    """`column = :column` for each column named (a name that is no column raises here)."""
    return {tasks.c[name].key: bindparam(name) for name in sorted(columns)}


GET_OWNED = CompiledStatement(select(tasks).where(*_owned()))


@cache
def insert_owned(columns: frozenset[str]) -> CompiledStatement:
    """A task of `:owner_id` with `columns` set; the others take the model's defaults."""
    values = {**_set(columns), "user_id": bindparam("owner_id")}
    values |= {"created_at": bindparam("now"), "updated_at": bindparam("now")}
    return CompiledStatement(insert(tasks).values(values).returning(tasks))


@cache
def update_owned(dialect: str, columns: frozenset[str], conditional: bool) -> CompiledStatement:
    """Set `columns` (from same-named parameters) on the owner's task."""
    where = _owned(conditional=conditional, dialect=dialect)
    statement = update(tasks).where(*where).values(**_set(columns), **_changed(dialect)).returning(tasks)
    return CompiledStatement(statement)


@cache
def toggle_owned(dialect: str, conditional: bool) -> CompiledStatement:
    """Flip `completed` in one statement: concurrent toggles never read a stale value."""
    where = _owned(conditional=conditional, dialect=dialect)
    statement = update(tasks).where(*where).values(completed=not_(tasks.c.completed), **_changed(dialect))
    return CompiledStatement(statement.returning(tasks))


@cache
def delete_owned(dialect: str, conditional: bool) -> CompiledStatement:
    where = _owned(conditional=conditional, dialect=dialect)
    return CompiledStatement(delete(tasks).where(*where).returning(tasks.c.id))


def _among_owned(dialect: str) -> list[ColumnElement[bool]]:
    """Those of the ids `:task_ids` that are tasks of `:owner_id`."""
    return [tasks.c.user_id == bindparam("owner_id"), _in(tasks.c.id, "task_ids", dialect)]


@cache
def lock_many_owned(dialect: str) -> CompiledStatement:
    """Lock those of `:task_ids` that are the owner's, in id order, before a write of several.

    Every write also updates the owner's counter row (a trigger), after locking its task row. A
    statement that wrote several tasks would hold the counter while it locks the next task, which
    a single write may hold while it waits for the counter: a deadlock. Locked first, in one
    order, the rows are the batch's before it needs the counter.
    """
    statement = select(tasks.c.id).where(*_among_owned(dialect)).order_by(tasks.c.id).with_for_update()
    return CompiledStatement(statement)


@cache
def set_completed_many(dialect: str) -> CompiledStatement:
    values = {"completed": bindparam("completed"), **_changed(dialect)}
    statement = update(tasks).where(*_among_owned(dialect)).values(values).returning(tasks)
    return CompiledStatement(statement)


@cache
def delete_many_owned(dialect: str) -> CompiledStatement:
    return CompiledStatement(delete(tasks).where(*_among_owned(dialect)).returning(tasks.c.id))


class TaskRepository:
    """Owner-scoped task statements: every method takes the owner, none reaches a task without it.

    Not an advanced-alchemy repository: its generic `get/update/delete(item_id)` would be
    unscoped. A batch runs in the request's transaction, so that it stays all or nothing.
    """

    __slots__ = ("_database",)

    def __init__(self, database: RequestDatabase) -> None:
        self._database = database

    @property
    def _dialect(self) -> str:
        return self._database.dialect.name

    async def get_owned(self, owner_id: int, task_id: int) -> TaskRecord | None:
        if task_id > MAX_ID:
            return None
        async with self._database.statements() as run:
            row = await run.fetch_one(GET_OWNED, owner_id=owner_id, task_id=task_id)
        return _record(row) if row is not None else None

    async def page_owned(self, owner_id: int, query: TaskQuery) -> TaskListPage:
        """One page of a user's tasks and, from the same read, the number of all that match."""
        after_value, after_id = query.after or (None, None)
        params = {
            "owner_id": owner_id,
            "completed": query.completed,
            "pattern": contains_pattern(query.q) if query.q else None,
            "limit": query.limit + 1,  # one more than the page: is there a next one
            "offset": query.offset,
            "after_value": after_value,
            "after_id": after_id,
        }
        statement = list_page(query.completed is not None, bool(query.q), query.sort, query.after is not None)
        async with self._database.statements() as run:
            rows = await run.fetch_all(statement, **params)
        items = [_record(row) for row in rows if row["id"] is not None]
        more = len(items) > query.limit
        summary = rows[0]
        return TaskListPage(items[: query.limit], int(summary["matching"]), int(summary["changes"]), more)

    async def changes_owned(self, owner_id: int, since: int, limit: int) -> TaskChanges:
        """At most `limit` of the owner's changes after change number `since`, from one read."""
        async with self._database.statements() as run:
            rows = await run.fetch_all(changes_since(), owner_id=owner_id, since=since, limit=limit + 1)
        changes = [row for row in rows if row["kind"] != "position"]
        more = len(changes) > limit
        if more:
            changes = changes[:limit]
            position = int(changes[-1]["change"])
        else:  # every change up to the owner's change number is here (none at all: no task ever)
            position = int(rows[-1]["change"]) if rows else since
        changed = [_record(row) for row in changes if row["kind"] == "task"]
        deleted = [int(row["id"]) for row in changes if row["kind"] == "deleted"]
        return TaskChanges(changed, deleted, position, more)

    async def changes_so_far(self, owner_id: int) -> int:
        """The owner's change number now: where a changes feed that begins now starts."""
        async with self._database.statements() as run:
            return int(await run.fetch_value(CHANGES_SO_FAR, owner_id=owner_id))

    async def create_owned(self, owner_id: int, values: Mapping[str, Any]) -> TaskRecord | None:
        """Insert a task; `None` when the owner no longer exists."""
        statement = insert_owned(frozenset(values))
        try:
            async with self._database.statements() as run:
                row = await run.fetch_one(statement, **values, owner_id=owner_id, now=datetime.now(UTC))
        except IntegrityError:  # the owner's foreign key
            return None
        return _record(row) if row is not None else None

    async def create_many_owned(self, owner_id: int, rows: Sequence[Mapping[str, Any]]) -> list[TaskRecord]:
        """Insert tasks, returned in the order given; none when the owner no longer exists."""
        await self._database.all_or_nothing()
        now = datetime.now(UTC)
        async with self._database.statements() as run:
            return await insert_tasks(run, [{**row, "owner_id": owner_id, "now": now} for row in rows])

    async def update_owned(
        self, owner_id: int, task_id: int, values: Mapping[str, Any], versions: Versions = None
    ) -> TaskRecord | None:
        """Set `values` on the owner's task in one statement.

        `None` when there is no such task, or when `versions` is given and the
        task's version is not among them (the If-Match check, atomic with the write).
        """
        statement = update_owned(self._dialect, frozenset(values), versions is not None)
        return await self._change(statement, owner_id, task_id, versions, **values)

    async def toggle_completed(
        self, owner_id: int, task_id: int, versions: Versions = None
    ) -> TaskRecord | None:
        statement = toggle_owned(self._dialect, versions is not None)
        return await self._change(statement, owner_id, task_id, versions)

    async def _change(
        self, statement: CompiledStatement, owner_id: int, task_id: int, versions: Versions, **values: Any
    ) -> TaskRecord | None:
        if task_id > MAX_ID:
            return None
        params = {"owner_id": owner_id, "task_id": task_id, "versions": list(versions or ())}
        async with self._database.statements() as run:
            row = await run.fetch_one(statement, **params, now=datetime.now(UTC), **values)
        return _record(row) if row is not None else None

    async def delete_owned(self, owner_id: int, task_id: int, versions: Versions = None) -> bool:
        if task_id > MAX_ID:
            return False
        statement = delete_owned(self._dialect, versions is not None)
        params = {"owner_id": owner_id, "task_id": task_id, "versions": list(versions or ())}
        async with self._database.statements() as run:
            return await run.fetch_one(statement, **params) is not None

    async def set_completed_many(
        self, owner_id: int, task_ids: Sequence[int], completed: bool
    ) -> list[TaskRecord]:
        """Set `completed` on those of the ids that are the owner's tasks; returns the tasks changed."""
        await self._database.all_or_nothing()
        params = {"owner_id": owner_id, "task_ids": list(task_ids), "completed": completed}
        async with self._database.statements() as run:
            await run.fetch_all(lock_many_owned(self._dialect), **params)
            rows = await run.fetch_all(set_completed_many(self._dialect), **params, now=datetime.now(UTC))
        return [_record(row) for row in rows]

    async def delete_many_owned(self, owner_id: int, task_ids: Sequence[int]) -> list[int]:
        """Delete those of the ids that are the owner's tasks; returns the ids deleted."""
        await self._database.all_or_nothing()
        params = {"owner_id": owner_id, "task_ids": list(task_ids)}
        async with self._database.statements() as run:
            await run.fetch_all(lock_many_owned(self._dialect), **params)
            rows = await run.fetch_all(delete_many_owned(self._dialect), **params)
        return [row["id"] for row in rows]


async def insert_tasks(run: Statements, rows: Sequence[Mapping[str, Any]]) -> list[TaskRecord]:
    """Insert tasks, each naming its `owner_id` and its `now` (its creation time), and returned in
    the order given; none when an owner does not exist."""
    if not rows:
        return []
    statement = insert_owned(frozenset(rows[0]) - {"owner_id", "now"})
    try:
        return [_record(row) for row in await run.fetch_many(statement, rows)]
    except IntegrityError:  # the owner's foreign key
        return []
