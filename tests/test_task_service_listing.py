"""TaskService.list_tasks on the real PostgreSQL test database: totals past the last page, pages that
cover every task once, `q` matching `%` and `_` literally, and sorts with ties broken by id.

The fixtures (`task_service`, `db_session`, `ann_user`) are in service_layer.py."""

from __future__ import annotations

from service_layer import pair
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from todo_svc.db.models import User
from todo_svc.db.tasks import TaskQuery
from todo_svc.services.tasks import TaskService


async def test_list_total_counts_every_match_also_past_the_last_page(
    task_service: TaskService, ann_user: User
) -> None:
    for i in range(5):
        await task_service.create_task(ann_user.id, {"title": f"task {i}", "completed": i < 3})

    items, total = pair(await task_service.list_tasks(ann_user.id, TaskQuery()))
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
        items, counted = pair(await task_service.list_tasks(ann_user.id, query))
        assert (len(items), counted) == (page_size, total), query


async def test_list_pages_cover_every_task_exactly_once(task_service: TaskService, ann_user: User) -> None:
    created = {(await task_service.create_task(ann_user.id, {"title": f"t{i}"})).id for i in range(7)}
    seen: list[int] = []
    for offset in range(0, 9, 3):
        items, total = pair(await task_service.list_tasks(ann_user.id, TaskQuery(limit=3, offset=offset)))
        assert total == 7
        seen += [t.id for t in items]
    assert sorted(seen) == sorted(created)


async def test_q_matches_percent_and_underscore_literally(task_service: TaskService, ann_user: User) -> None:
    titles = ["100% done", "1000 done", "snake_case", "snakeXcase", "plain"]
    for title in titles:
        await task_service.create_task(ann_user.id, {"title": title})
    await task_service.create_task(ann_user.id, {"title": "described", "description": "50%_off"})

    async def titles_for(q: str) -> set[str]:
        items, total = pair(await task_service.list_tasks(ann_user.id, TaskQuery(q=q)))
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
    db_session: AsyncSession, task_service: TaskService, ann_user: User
) -> None:
    ids = [(await task_service.create_task(ann_user.id, {"title": title})).id for title in ("b", "a", "c")]
    items, _ = pair(await task_service.list_tasks(ann_user.id, TaskQuery(sort="title")))
    assert [t.title for t in items] == ["a", "b", "c"]
    items, _ = pair(await task_service.list_tasks(ann_user.id, TaskQuery(sort="-title")))
    assert [t.title for t in items] == ["c", "b", "a"]

    # Same timestamps everywhere: the order is decided by id alone.
    await db_session.execute(
        text("UPDATE tasks SET created_at = '2026-01-01T00:00:00Z', updated_at = '2026-01-01T00:00:00Z'")
    )
    for sort, expected in (
        ("-created_at", sorted(ids, reverse=True)),
        ("created_at", sorted(ids)),
        ("-updated_at", sorted(ids, reverse=True)),
        ("updated_at", sorted(ids)),
    ):
        items, _ = pair(await task_service.list_tasks(ann_user.id, TaskQuery(sort=sort)))  # type: ignore[arg-type]
        assert [t.id for t in items] == expected, sort
