"""Task use cases. Every method takes the owner's id: there is no way to touch a task without it.

`if_match`, where taken, is the set of versions the client accepts (from its
If-Match tags); `None` means unconditional.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from todo_svc.db.tasks import (
    MAX_ID,
    SortKey,
    TaskChanges,
    TaskListPage,
    TaskQuery,
    TaskRecord,
    TaskRepository,
    Versions,
)
from todo_svc.services.errors import AccountGone, ChangesExpired, TaskChanged, TaskNotFound, TasksNotFound

__all__ = (
    "MAX_ID",
    "FeedPosition",
    "SortKey",
    "TaskChanges",
    "TaskListPage",
    "TaskQuery",
    "TaskRecord",
    "TaskService",
    "Versions",
)


@dataclass(frozen=True, slots=True)
class FeedPosition:
    """Where a reader of the changes feed is: the owner's change number it has read up to, and
    when it last caught up (deletions since then are still kept, for the retention period)."""

    change: int
    as_of: datetime


class TaskService:
    def __init__(self, tasks: TaskRepository, tombstone_retention: timedelta) -> None:
        self._tasks = tasks
        self._retention = tombstone_retention

    async def list_tasks(self, owner_id: int, query: TaskQuery) -> TaskListPage:
        return await self._tasks.page_owned(owner_id, query)

    async def changes_so_far(self, owner_id: int) -> int:
        """The owner's change number: it moves with every change of any of their tasks."""
        return await self._tasks.changes_so_far(owner_id)

    async def changes(
        self, owner_id: int, since: FeedPosition | None, limit: int
    ) -> tuple[TaskChanges, FeedPosition]:
        """The owner's changes after `since`, and the position to ask from next; without `since`,
        none and the position of now. A position older than the retention has lost deletions."""
        now = datetime.now(UTC)
        if since is None:
            return TaskChanges([], [], 0, more=False), FeedPosition(await self.changes_so_far(owner_id), now)
        if now - since.as_of > self._retention:
            raise ChangesExpired(self._retention.days)
        feed = await self._tasks.changes_owned(owner_id, since.change, limit)
        # Caught up: deletions from now on are kept a retention from now. Not yet: from as before.
        return feed, FeedPosition(feed.position, since.as_of if feed.more else now)

    async def get_task(self, owner_id: int, task_id: int) -> TaskRecord:
        task = await self._tasks.get_owned(owner_id, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def create_task(self, owner_id: int, values: dict[str, Any]) -> TaskRecord:
        task = await self._tasks.create_owned(owner_id, values)
        if task is None:
            raise AccountGone
        return task

    async def update_task(
        self, owner_id: int, task_id: int, values: dict[str, Any], if_match: Versions = None
    ) -> TaskRecord:
        """Replace or patch the given fields; an empty patch still moves `updated_at`."""
        task = await self._tasks.update_owned(owner_id, task_id, values, if_match)
        return task if task is not None else await self._why_not_changed(owner_id, task_id, if_match)

    async def complete_task(
        self, owner_id: int, task_id: int, completed: bool | None, if_match: Versions = None
    ) -> TaskRecord:
        """Set `completed`, or toggle it when no value is given."""
        if completed is not None:
            return await self.update_task(owner_id, task_id, {"completed": completed}, if_match)
        task = await self._tasks.toggle_completed(owner_id, task_id, if_match)
        return task if task is not None else await self._why_not_changed(owner_id, task_id, if_match)

    async def delete_task(self, owner_id: int, task_id: int, if_match: Versions = None) -> None:
        if not await self._tasks.delete_owned(owner_id, task_id, if_match):
            await self._why_not_changed(owner_id, task_id, if_match)

    async def create_tasks(self, owner_id: int, rows: Sequence[dict[str, Any]]) -> Sequence[TaskRecord]:
        """Create all the tasks in one statement, in the order given."""
        tasks = await self._tasks.create_many_owned(owner_id, rows)
        if not tasks:
            raise AccountGone
        return tasks

    async def set_completed(
        self, owner_id: int, task_ids: Sequence[int], completed: bool
    ) -> list[TaskRecord]:
        """All or nothing: one id that is not the owner's fails the batch (the request rolls back)."""
        changed = {
            task.id: task for task in await self._tasks.set_completed_many(owner_id, task_ids, completed)
        }
        self._require_all(task_ids, changed)
        return [changed[task_id] for task_id in task_ids]

    async def delete_tasks(self, owner_id: int, task_ids: Sequence[int]) -> int:
        """All or nothing, like `set_completed`."""
        deleted = await self._tasks.delete_many_owned(owner_id, task_ids)
        self._require_all(task_ids, deleted)
        return len(deleted)

    @staticmethod
    def _require_all(wanted: Sequence[int], found: Collection[int]) -> None:
        if missing := [task_id for task_id in wanted if task_id not in found]:
            raise TasksNotFound(missing)

    async def _why_not_changed(self, owner_id: int, task_id: int, if_match: Versions) -> TaskRecord:
        """A conditional write that matched no row: the task changed (412) or is not there (404)."""
        if if_match is not None and await self._tasks.get_owned(owner_id, task_id) is not None:
            raise TaskChanged(task_id)
        raise TaskNotFound(task_id)
