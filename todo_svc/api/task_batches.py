"""Batches of task changes: all or nothing, at most 100 items each."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import structs

from todo_svc.api.auth import BEARER
from todo_svc.api.body import StrictBody
from todo_svc.api.dependencies import Database
from todo_svc.api.errors import error_responses
from todo_svc.api.idempotency import IdempotencyKey, replay_or_run
from todo_svc.api.rate_limits import RATE_LIMIT_HEADERS, TASKS_LIMITED
from todo_svc.api.schemas import (
    DeletedCount,
    TaskBatchComplete,
    TaskBatchCreate,
    TaskBatchDelete,
    TaskList,
    TaskOut,
)
from todo_svc.api.tasks import REPLAYED_HEADER, Tasks, UserId, requires_owner


class TaskBatchController(Controller):
    path = "/users/{user_id:int}/tasks/batch"
    tags = ["tasks"]  # noqa: RUF012 - Litestar reads these class attributes
    guards = [requires_owner]  # noqa: RUF012
    security = BEARER
    opt = TASKS_LIMITED
    response_headers = RATE_LIMIT_HEADERS

    @post(
        status_code=HTTP_201_CREATED,
        dto=StrictBody[TaskBatchCreate],
        response_headers=[REPLAYED_HEADER],
        return_dto=None,
        responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
    )
    async def create_tasks(
        self,
        user_id: UserId,
        data: JSONBody[TaskBatchCreate],
        task_service: Tasks,
        db: Database,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[TaskList]:
        """Create up to 100 tasks at once; the items come back in request order."""

        async def create() -> Response[Any]:
            tasks = await task_service.create_tasks(user_id, [structs.asdict(task) for task in data.tasks])
            return Response(
                TaskList(items=[TaskOut.of(task) for task in tasks]), status_code=HTTP_201_CREATED
            )

        return await replay_or_run(db, user_id, idempotency_key, "create_tasks", data, create)

    @post(
        "/complete",
        status_code=HTTP_200_OK,
        dto=StrictBody[TaskBatchComplete],
        return_dto=None,
        responses=error_responses(400, 401, 403, 404, 413, 415, 429),
    )
    async def complete_tasks(
        self, user_id: UserId, data: JSONBody[TaskBatchComplete], task_service: Tasks
    ) -> TaskList:
        """Set `completed` on every listed task, or on none when one is not the caller's."""
        tasks = await task_service.set_completed(user_id, data.ids, data.completed)
        return TaskList(items=[TaskOut.of(task) for task in tasks])

    @post(
        "/delete",
        status_code=HTTP_200_OK,
        dto=StrictBody[TaskBatchDelete],
        return_dto=None,
        responses=error_responses(400, 401, 403, 404, 413, 415, 429),
    )
    async def delete_tasks(
        self, user_id: UserId, data: JSONBody[TaskBatchDelete], task_service: Tasks
    ) -> DeletedCount:
        """Delete every listed task, or none when one is not the caller's."""
        return DeletedCount(deleted=await task_service.delete_tasks(user_id, data.ids))
