"""The task statements, built once per shape from the `tasks` table and cached.

Every statement is scoped by `:owner_id`. Shapes vary by a few flags (filters,
sort, the columns a PATCH sets, whether If-Match applies), so each cache holds
a small, bounded set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal, cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    Interval,
    String,
    Table,
    and_,
    bindparam,
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

from todo_svc.db.driver import CompiledStatement
from todo_svc.db.models import Task

tasks = cast("Table", Task.__table__)
# The columns every statement returns, in `TaskRecord` order.
TASK_COLUMNS = (
    tasks.c.id,
    tasks.c.user_id,
    tasks.c.title,
    tasks.c.description,
    tasks.c.completed,
    tasks.c.version,
    tasks.c.created_at,
    tasks.c.updated_at,
)
SortKey = Literal["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]
ONE_MICROSECOND = literal(timedelta(microseconds=1), Interval())


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task as read from the database (a row of `TASK_COLUMNS`)."""

    id: int
    user_id: int
    title: str
    description: str | None
    completed: bool
    version: int
    created_at: datetime
    updated_at: datetime


def _owned() -> ColumnElement[bool]:
    return and_(tasks.c.id == bindparam("task_id"), tasks.c.user_id == bindparam("owner_id"))


def _version_matches(dialect: str) -> ColumnElement[bool]:
    """`version` is one of `:versions` (the If-Match check, inside the write itself)."""
    if dialect == "postgresql":
        return tasks.c.version == func.any(bindparam("versions", type_=ARRAY(Integer)))
    return tasks.c.version.in_(bindparam("versions", expanding=True))


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


GET_OWNED = CompiledStatement(select(*TASK_COLUMNS).where(_owned()))

INSERT = CompiledStatement(
    insert(tasks)
    .values(
        user_id=bindparam("owner_id"),
        title=bindparam("title"),
        description=bindparam("description"),
        completed=bindparam("completed"),
        version=1,
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(*TASK_COLUMNS)
)


@cache
def list_page(completed: bool, searched: bool, sort: SortKey, counted: bool = False) -> CompiledStatement:
    """A page of the owner's tasks: `:limit` rows from `:offset`, ties broken by id. `counted`: each
    row ends with the number of all the tasks that match (one statement: one consistent read)."""
    column = tasks.c[sort.lstrip("-")]
    descending = sort.startswith("-")
    order = (column.desc(), tasks.c.id.desc()) if descending else (column.asc(), tasks.c.id.asc())
    columns = (*TASK_COLUMNS, func.count().over().label("matching")) if counted else TASK_COLUMNS
    statement = select(*columns).where(*_filters(completed, searched)).order_by(*order)
    return CompiledStatement(statement.limit(bindparam("limit")).offset(bindparam("offset")))


@cache
def list_count(completed: bool, searched: bool) -> CompiledStatement:
    return CompiledStatement(select(func.count()).select_from(tasks).where(*_filters(completed, searched)))


def _filters(completed: bool, searched: bool) -> list[ColumnElement[bool]]:
    filters = [tasks.c.user_id == bindparam("owner_id")]
    if completed:
        filters.append(tasks.c.completed == bindparam("completed"))
    if searched:
        pattern = bindparam("pattern", type_=String)
        filters.append(
            or_(tasks.c.title.ilike(pattern, escape="\\"), tasks.c.description.ilike(pattern, escape="\\"))
        )
    return filters


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with `%`, `_` and `\\` taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@cache
def update_owned(dialect: str, columns: frozenset[str], conditional: bool) -> CompiledStatement:
    """Set `columns` (from same-named parameters); with `conditional` only at one of `:versions`."""
    where = [_owned(), _version_matches(dialect)] if conditional else [_owned()]
    values: dict[str, Any] = {column: bindparam(column) for column in sorted(columns)}
    statement = update(tasks).where(*where).values(**values, **_changed(dialect)).returning(*TASK_COLUMNS)
    return CompiledStatement(statement)


@cache
def toggle_owned(dialect: str, conditional: bool) -> CompiledStatement:
    """Flip `completed` in one statement: concurrent toggles never read a stale value."""
    where = [_owned(), _version_matches(dialect)] if conditional else [_owned()]
    statement = update(tasks).where(*where).values(completed=not_(tasks.c.completed), **_changed(dialect))
    return CompiledStatement(statement.returning(*TASK_COLUMNS))


@cache
def delete_owned(dialect: str, conditional: bool) -> CompiledStatement:
    where = [_owned(), _version_matches(dialect)] if conditional else [_owned()]
    return CompiledStatement(delete(tasks).where(*where).returning(tasks.c.id))


@cache
def set_completed_many(dialect: str) -> Any:
    """The batch form (run in the request's transaction, so it stays all or nothing)."""
    return (
        update(tasks)
        .where(
            tasks.c.user_id == bindparam("owner_id"), tasks.c.id.in_(bindparam("task_ids", expanding=True))
        )
        .values(completed=bindparam("completed"), **_changed(dialect))
        .returning(*TASK_COLUMNS)
    )
