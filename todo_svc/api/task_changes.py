"""The changes feed of one user's tasks: what was created, changed and deleted since a token."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import QueryParameter

from todo_svc.api.auth import BEARER
from todo_svc.api.cursors import SinceParam, positions_of
from todo_svc.api.errors import error_responses
from todo_svc.api.rate_limits import RATE_LIMIT_HEADERS, TASKS_LIMITED
from todo_svc.api.schemas import TaskChangesOut, TaskOut
from todo_svc.api.tasks import Tasks, UserId, exact_bounds, requires_owner


class TaskChangesController(Controller):
    path = "/users/{user_id:int}/tasks/changes"
    tags = ["tasks"]  # noqa: RUF012 - Litestar reads these class attributes
    guards = [requires_owner]  # noqa: RUF012
    security = BEARER
    opt = TASKS_LIMITED
    response_headers = RATE_LIMIT_HEADERS

    @get(responses=error_responses(400, 401, 403, 404, 410, 429))
    async def list_task_changes(
        self,
        user_id: UserId,
        task_service: Tasks,
        state: State,
        since: SinceParam = None,
        limit: Annotated[int, QueryParameter(**exact_bounds(1, 100))] = 50,
    ) -> TaskChangesOut:
        """The tasks created or changed and the ids deleted since `since`, in the order they changed,
        with the token to ask from next. Without `since`: nothing yet, and the token of now. A token
        older than the retention of deletions is 410: read the task list again, then follow on."""
        positions = positions_of(state)
        position = positions.since(since, user_id) if since is not None else None
        feed, next_position = await task_service.changes(user_id, position, limit)
        return TaskChangesOut(
            items=[TaskOut.of(task) for task in feed.changed],
            deleted=feed.deleted,
            next_since=positions.since_token(user_id, next_position),
            has_more=feed.more,
        )
