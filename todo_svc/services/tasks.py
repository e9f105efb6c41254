"""Task use cases. Every method takes the owner's id: there is no way to touch a task without it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from todo_svc.db.models import Task
from todo_svc.db.repositories import TaskQuery, TaskRepository
from todo_svc.services.errors import AccountGone, TaskNotFound


class TaskService:
    def __init__(self, tasks: TaskRepository) -> None:
        self._tasks = tasks

    async def list_tasks(self, owner_id: int, query: TaskQuery) -> tuple[Sequence[Task], int]:
        return await self._tasks.page_owned(owner_id, query)

    async def get_task(self, owner_id: int, task_id: int) -> Task:
        return self._found(task_id, await self._tasks.get_owned(owner_id, task_id))

    async def create_task(self, owner_id: int, values: dict[str, Any]) -> Task:
        task = await self._tasks.create_owned(owner_id, values)
        if task is None:
            raise AccountGone
        return task

    async def update_task(self, owner_id: int, task_id: int, values: dict[str, Any]) -> Task:
        """Replace or patch the given fields; an empty patch still moves `updated_at`."""
        return self._found(task_id, await self._tasks.update_owned(owner_id, task_id, values))

    async def complete_task(self, owner_id: int, task_id: int, completed: bool | None) -> Task:
        """Set `completed`, or toggle it when no value is given."""
        if completed is None:
            return self._found(task_id, await self._tasks.toggle_completed(owner_id, task_id))
        return await self.update_task(owner_id, task_id, {"completed": completed})

    async def delete_task(self, owner_id: int, task_id: int) -> None:
        if not await self._tasks.delete_owned(owner_id, task_id):
            raise TaskNotFound(task_id)

    @staticmethod
    def _found(task_id: int, task: Task | None) -> Task:
        if task is None:
            raise TaskNotFound(task_id)
        return task
