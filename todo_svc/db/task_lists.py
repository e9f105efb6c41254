"""The reads of many tasks: a page of a list, and the changes feed. Each is one statement, so what
it returns (the rows, the total, the owner's change number) is one consistent read.

Neither grows with the size of the list: a page is an index range (from `:offset`, or after a
keyset position), `total` and the change number are one row of `task_counters` (kept by the
database's triggers), a search is counted through the trigram indexes, and the feed is an index
range of change numbers.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    String,
    Table,
    bindparam,
    case,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)

from todo_svc.db.database import CompiledStatement
from todo_svc.db.models import Task, TaskCounter, TaskTombstone

if TYPE_CHECKING:
    from sqlalchemy.sql.expression import ScalarSelect

tasks = cast("Table", Task.__table__)
counters = cast("Table", TaskCounter.__table__)
tombstones = cast("Table", TaskTombstone.__table__)
SortKey = Literal["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]


def _counted(column: ColumnElement[int]) -> ScalarSelect[int]:
    """One figure of the owner's counter row (0 before their first task)."""
    return (
        select(func.coalesce(func.max(column), 0))
        .where(counters.c.user_id == bindparam("owner_id"))
        .scalar_subquery()
    )


CHANGES_SO_FAR = CompiledStatement(select(_counted(counters.c.changes)))


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


def _matching(completed: bool, searched: bool) -> ScalarSelect[int]:
    """How many of the owner's tasks match: from the counters, or for a search a count (by index)."""
    if searched:
        return select(func.count()).select_from(tasks).where(*_filters(completed, searched)).scalar_subquery()
    if not completed:
        return _counted(counters.c.tasks)
    wanted = bindparam("completed", type_=Boolean)
    return _counted(case((wanted, counters.c.completed), else_=counters.c.tasks - counters.c.completed))


@cache
def list_page(completed: bool, searched: bool, sort: SortKey, keyset: bool) -> CompiledStatement:
    """`:limit` of the owner's tasks from `:offset`, or (`keyset`) after the position
    (`:after_value`, `:after_id`) in the sort order, ties broken by id.

    Every row also carries `matching` (all the tasks that match the filters) and `changes` (the
    owner's change number); a page with no task is one row with only those two.
    """
    column = tasks.c[sort.lstrip("-")]
    descending = sort.startswith("-")
    where = _filters(completed, searched)
    if keyset:
        after = tuple_(bindparam("after_value", type_=column.type), bindparam("after_id", type_=BigInteger))
        where.append(tuple_(column, tasks.c.id) < after if descending else tuple_(column, tasks.c.id) > after)
    order = (column.desc(), tasks.c.id.desc()) if descending else (column.asc(), tasks.c.id.asc())
    page = select(tasks).where(*where).order_by(*order).limit(bindparam("limit"))
    if not keyset:
        page = page.offset(bindparam("offset"))
    rows = page.subquery("page")
    summary = select(
        _matching(completed, searched).label("matching"), _counted(counters.c.changes).label("changes")
    ).subquery("summary")
    paged_column = rows.c[column.name]
    outer_order = (
        (paged_column.desc(), rows.c.id.desc()) if descending else (paged_column.asc(), rows.c.id.asc())
    )
    statement = (
        select(summary.c.matching, summary.c.changes, *rows.c)
        .select_from(summary.outerjoin(rows, true()))
        .order_by(*outer_order)
    )
    return CompiledStatement(statement)


def _feed_branch(kind: str, change: ColumnElement[int], *columns: ColumnElement[Any]) -> Any:
    return [literal_column(f"'{kind}'", String).label("kind"), change.label("change"), *columns]


@cache
def changes_since() -> CompiledStatement:
    """The owner's changes after `:since`, in order, `:limit` at most: each task changed since (as
    it is now), each task deleted since (its id), and last the owner's change number (`position`)
    that the rows bring the reader up to when they are all there."""
    empty = {column.name: null().label(column.name) for column in tasks.c}
    changed = select(*_feed_branch("task", tasks.c.last_change, *tasks.c)).where(
        tasks.c.user_id == bindparam("owner_id"), tasks.c.last_change > bindparam("since")
    )
    deleted_columns = {**empty, "id": tombstones.c.task_id.label("id")}
    deleted = select(*_feed_branch("deleted", tombstones.c.change, *deleted_columns.values())).where(
        tombstones.c.user_id == bindparam("owner_id"), tombstones.c.change > bindparam("since")
    )
    position = select(*_feed_branch("position", counters.c.changes, *empty.values())).where(
        counters.c.user_id == bindparam("owner_id")
    )
    feed = union_all(changed, deleted, position).subquery("feed")
    # `position` sorts after the change with the same number, the last one.
    last = feed.c.kind == literal_column("'position'", String)
    statement = select(feed).order_by(feed.c.change, last).limit(bindparam("limit"))
    return CompiledStatement(statement)
