"""The task routes of one user, guarded so that only that user reaches them."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import ResponseHeader, State
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT, HTTP_304_NOT_MODIFIED
from msgspec import UNSET, structs

from todo_svc.api.auth import BEARER
from todo_svc.api.body import OptionalBodyOperation, StrictBody
from todo_svc.api.conditional import (
    IfMatch,
    IfNoneMatch,
    ListIfNoneMatch,
    accepted_versions,
    etag,
    is_current,
    list_etag,
    names,
)
from todo_svc.api.cursors import CursorParam, invalid, positions_of
from todo_svc.api.dependencies import Database
from todo_svc.api.errors import error_responses
from todo_svc.api.idempotency import IdempotencyKey, replay_or_run
from todo_svc.api.rate_limits import RATE_LIMIT_HEADERS, TASKS_LIMITED
from todo_svc.api.schemas import (
    CompletionSet,
    TaskCreate,
    TaskOut,
    TaskPage,
    TaskPatch,
    TaskReplace,
    plain_optional,
)
from todo_svc.services.tasks import MAX_ID, SortKey, TaskQuery, TaskRecord, TaskService


def exact_bounds(low: int, high: int) -> dict[str, Any]:
    """`ge`/`le`, given to OpenAPI again: Litestar publishes bounds as floats, and 2**63 - 1 is not one."""
    return {"ge": low, "le": high, "schema_extra": {"minimum": low, "maximum": high}}


UserId = Annotated[
    int, PathParameter(**exact_bounds(1, MAX_ID), description="The owner's id; must be the caller's.")
]
TaskId = Annotated[int, PathParameter(**exact_bounds(1, MAX_ID), description="The task's id.")]
Tasks = NamedDependency[TaskService]
ETAG_HEADER = ResponseHeader(
    name="ETag",
    documentation_only=True,
    description="The task's current version tag.",
    value='"1.1"',  # documentation only: Litestar takes the header's schema (a string) from the value's type
)
LOCATION_HEADER = ResponseHeader(
    name="Location",
    documentation_only=True,
    description="The new task's path.",
    value="/api/v1/users/1/tasks/1",  # documentation only, as above
)
REPLAYED_HEADER = ResponseHeader(
    name="Idempotent-Replayed",
    documentation_only=True,
    description="`true` when this is the stored answer to an earlier request with the same Idempotency-Key.",
    value="true",  # documentation only, as above
)
NOT_MODIFIED = ResponseSpec(
    data_container=None, description="The task still has the tag given in If-None-Match (no body)."
)


LIST_ETAG_HEADER = ResponseHeader(
    name="ETag",
    documentation_only=True,
    description="The list's current tag: it changes with any change of the user's tasks.",
    value='"l1.0"',  # documentation only, as above
)
NEXT_LINK_HEADER = ResponseHeader(
    name="Link",
    documentation_only=True,
    description='The next page, `<…?cursor=…>; rel="next"`; absent on the last page.',
    value='</api/v1/users/1/tasks?cursor=…>; rel="next"',  # documentation only, as above
)
LIST_NOT_MODIFIED = ResponseSpec(
    data_container=None, description="Nothing changed since the list tag given in If-None-Match (no body)."
)


def not_modified(tag: str) -> Response[Any]:
    no_body: Any = None  # 304 carries no body
    return Response(no_body, status_code=HTTP_304_NOT_MODIFIED, headers={"ETag": tag})


def next_page_url(request: Request[Any, Any, Any], query: TaskQuery, cursor: str) -> str:
    """The list's path with the same sort, filters and limit, and the cursor of the next page."""
    params: dict[str, str | int] = {"sort": query.sort, "limit": query.limit, "cursor": cursor}
    if query.completed is not None:
        params["completed"] = "true" if query.completed else "false"
    if query.q is not None:
        params["q"] = query.q
    return f"{request.url.path}?{urlencode(params)}"


def task_response(
    task: TaskRecord, status_code: int = HTTP_200_OK, location: str | None = None
) -> Response[TaskOut]:
    headers = {"ETag": etag(task)}
    if location is not None:
        headers["Location"] = location
    return Response(TaskOut.of(task), status_code=status_code, headers=headers)


async def requires_owner(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Only the user named in the path may use it; runs before the body is read or any query.

    OPTIONS passes, as it passes the auth middleware: it has no user, and its answer (the allowed
    methods) is the same for every path.
    """
    if connection.scope.get("method") == HttpMethod.OPTIONS:
        return
    if connection.user.id != connection.path_params["user_id"]:
        raise PermissionDeniedException("You may only access your own tasks")


class TaskController(Controller):
    path = "/users/{user_id:int}/tasks"
    tags = ["tasks"]  # noqa: RUF012 - Litestar reads these class attributes
    guards = [requires_owner]  # noqa: RUF012
    security = BEARER
    opt = TASKS_LIMITED
    response_headers = RATE_LIMIT_HEADERS

    @get(
        responses={**error_responses(400, 401, 403, 404, 429), HTTP_304_NOT_MODIFIED: LIST_NOT_MODIFIED},
        response_headers=[LIST_ETAG_HEADER, NEXT_LINK_HEADER],
    )
    async def list_tasks(
        self,
        request: Request[Any, Any, Any],
        user_id: UserId,
        task_service: Tasks,
        state: State,
        completed: Annotated[
            bool | None,
            QueryParameter(
                description="Only completed (true) or open (false) tasks; all when left out (or null).",
            ),
        ] = None,
        q: Annotated[
            str | None,
            QueryParameter(
                max_length=255,
                pattern=r"^[^\x00]*$",  # PostgreSQL text cannot hold NUL
                description="Case-insensitive substring of title or description (no NUL character).",
                schema_extra=plain_optional("string"),
            ),
        ] = None,
        sort: Annotated[
            SortKey, QueryParameter(description="The order of the page; a leading `-` is descending.")
        ] = "-created_at",
        limit: Annotated[int, QueryParameter(**exact_bounds(1, 100))] = 50,
        offset: Annotated[int, QueryParameter(**exact_bounds(0, MAX_ID))] = 0,
        cursor: CursorParam = None,
        if_none_match: ListIfNoneMatch = None,
    ) -> Response[TaskPage]:
        """A page of the user's tasks, filtered and sorted, with the number of all matches and the
        cursor of the next page; 304 without a body when `If-None-Match` has the list's current tag."""
        query = TaskQuery(completed=completed, q=q, sort=sort, limit=limit, offset=offset)
        if cursor is not None:
            if offset:
                raise invalid("offset", "Page with offset or with cursor, not both")
            query = replace(query, after=positions_of(state).after(cursor, user_id, query))
        if if_none_match is not None:
            tag = list_etag(user_id, query, await task_service.changes_so_far(user_id))
            if names(if_none_match, tag):
                return not_modified(tag)
        page = await task_service.list_tasks(user_id, query)
        headers = {"ETag": list_etag(user_id, query, page.changes)}
        next_cursor = positions_of(state).next_cursor(user_id, query, page.items[-1]) if page.more else None
        if next_cursor is not None:
            headers["Link"] = f'<{next_page_url(request, query, next_cursor)}>; rel="next"'
        items = [TaskOut.of(task) for task in page.items]
        return Response(TaskPage(items, page.total, limit, offset, next_cursor), headers=headers)

    @post(
        status_code=HTTP_201_CREATED,
        dto=StrictBody[TaskCreate],
        return_dto=None,
        response_headers=[ETAG_HEADER, LOCATION_HEADER, REPLAYED_HEADER],
        responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
    )
    async def create_task(
        self,
        user_id: UserId,
        data: JSONBody[TaskCreate],
        task_service: Tasks,
        db: Database,
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[TaskOut]:
        """Create a task; `Location` names it. Safe to retry with an `Idempotency-Key`."""

        async def create() -> Response[TaskOut]:
            task = await task_service.create_task(user_id, structs.asdict(data))
            return task_response(task, HTTP_201_CREATED, location=f"{request.url.path.rstrip('/')}/{task.id}")

        return await replay_or_run(db, user_id, idempotency_key, "create_task", data, create)

    @get(
        "/{task_id:int}",
        responses={**error_responses(400, 401, 403, 404, 429), HTTP_304_NOT_MODIFIED: NOT_MODIFIED},
        response_headers=[ETAG_HEADER],
    )
    async def get_task(
        self, user_id: UserId, task_id: TaskId, task_service: Tasks, if_none_match: IfNoneMatch = None
    ) -> Response[TaskOut]:
        """One task, with its `ETag`; 304 without a body when `If-None-Match` has the current tag."""
        task = await task_service.get_task(user_id, task_id)
        if is_current(if_none_match, task):
            return not_modified(etag(task))
        return task_response(task)

    @put(
        "/{task_id:int}",
        dto=StrictBody[TaskReplace],
        response_headers=[ETAG_HEADER],
        return_dto=None,
        responses=error_responses(400, 401, 403, 404, 412, 413, 415, 429),
    )
    async def replace_task(
        self,
        user_id: UserId,
        task_id: TaskId,
        data: JSONBody[TaskReplace],
        task_service: Tasks,
        if_match: IfMatch = None,
    ) -> Response[TaskOut]:
        """Replace the task's fields; absent optional fields take their defaults."""
        versions = accepted_versions(if_match, task_id)
        return task_response(await task_service.update_task(user_id, task_id, structs.asdict(data), versions))

    @patch(
        "/{task_id:int}",
        dto=StrictBody[TaskPatch],
        response_headers=[ETAG_HEADER],
        return_dto=None,
        responses=error_responses(400, 401, 403, 404, 412, 413, 415, 429),
    )
    async def update_task(
        self,
        user_id: UserId,
        task_id: TaskId,
        data: JSONBody[TaskPatch],
        task_service: Tasks,
        if_match: IfMatch = None,
    ) -> Response[TaskOut]:
        """Change the fields given; the others keep their values."""
        changes = {name: value for name, value in structs.asdict(data).items() if value is not UNSET}
        versions = accepted_versions(if_match, task_id)
        return task_response(await task_service.update_task(user_id, task_id, changes, versions))

    @patch(
        "/{task_id:int}/complete",
        dto=StrictBody[CompletionSet],
        response_headers=[ETAG_HEADER],
        operation_class=OptionalBodyOperation,
        return_dto=None,
        responses=error_responses(400, 401, 403, 404, 412, 413, 415, 429),
    )
    async def complete_task(
        self,
        user_id: UserId,
        task_id: TaskId,
        task_service: Tasks,
        data: JSONBody[CompletionSet | None] = None,
        if_match: IfMatch = None,
    ) -> Response[TaskOut]:
        """Without a body toggle `completed`; with `{"completed": …}` set it (safe to retry)."""
        completed = data.completed if data is not None else None
        versions = accepted_versions(if_match, task_id)
        return task_response(await task_service.complete_task(user_id, task_id, completed, versions))

    @delete(
        "/{task_id:int}",
        status_code=HTTP_204_NO_CONTENT,
        responses=error_responses(400, 401, 403, 404, 412, 429),
    )
    async def delete_task(
        self, user_id: UserId, task_id: TaskId, task_service: Tasks, if_match: IfMatch = None
    ) -> None:
        """Delete the task."""
        await task_service.delete_task(user_id, task_id, accepted_versions(if_match, task_id))
