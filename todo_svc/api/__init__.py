"""Routers: the canonical `/api/v1`, and the unversioned routes of the original design, deprecated."""

from __future__ import annotations

import inspect
import re
from typing import Any

from litestar import Controller, Router
from litestar.handlers import HTTPRouteHandler
from litestar.types import Scope

from todo_svc.api.auth import AccountController, AuthController, SessionController
from todo_svc.api.compat import remounted
from todo_svc.api.ops import health, metrics, readiness
from todo_svc.api.task_batches import TaskBatchController
from todo_svc.api.task_changes import TaskChangesController
from todo_svc.api.tasks import TaskController

API_V1 = "/api/v1"
SUCCESSOR = "successor_prefixes"  # the opt of a legacy handler: (its path prefix, its successor's)


def deprecation_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """`Deprecation` and a `Link` to the successor, for the answers of a legacy route.

    Read from the matched handler as the response starts, so the auth middleware's
    401 on a legacy route carries them too.
    """
    handler = scope.get("route_handler")
    prefixes = handler.opt.get(SUCCESSOR) if handler is not None else None
    if prefixes is None:
        return []
    old_prefix, new_prefix = prefixes
    successor = new_prefix + scope["path"].removeprefix(old_prefix)
    return [(b"deprecation", b"true"), (b"link", f'<{successor}>; rel="successor-version"'.encode())]


def legacy(controller: type[Controller], path: str, successor_prefix: str) -> type[Controller]:
    """The controller's handlers again at `path`, deprecated in OpenAPI and in headers."""
    # Both without a trailing slash, so that `/auth/login` → `/api/v1/auth/login`
    # and `/api/1/tasks` → `/api/v1/users/1/tasks`.
    old_prefix, new_prefix = path.split("{", 1)[0].rstrip("/"), successor_prefix.rstrip("/")

    def deprecate(handler: HTTPRouteHandler) -> None:
        # Said in words too: some generators (openapi-python-client) drop `deprecated`.
        successor = operation_id(handler, handler.http_methods, None)
        (method,) = handler.http_methods
        (handler_path,) = handler.paths
        where = re.sub(r"\{(\w+):\w+\}", r"{\1}", new_prefix + (path + handler_path).removeprefix(old_prefix))
        handler.description = f"Deprecated: use `{successor}` ({method} {where.rstrip('/')}).\n\n" + (
            inspect.getdoc(handler.fn) or ""
        )
        handler.deprecated = True
        handler.opt = {**handler.opt, SUCCESSOR: (old_prefix, new_prefix)}

    return remounted(controller, path, f"Legacy{controller.__name__}", deprecate)


def operation_id(route_handler: HTTPRouteHandler, http_method: Any, path_components: Any) -> str:
    """`list_tasks` → `listTasks`; its deprecated twin → `listTasksLegacy`."""
    first, *rest = route_handler.handler_name.split("_")
    return first + "".join(word.title() for word in rest) + ("Legacy" if route_handler.deprecated else "")


api_v1 = Router(
    path=API_V1,
    route_handlers=[
        AuthController,
        SessionController,
        AccountController,
        TaskController,
        TaskBatchController,
        TaskChangesController,
    ],
)
legacy_routes = Router(
    path="/",
    route_handlers=[
        legacy(AuthController, "/auth", f"{API_V1}/auth/"),
        legacy(TaskController, "/api/{user_id:int}/tasks", f"{API_V1}/users/"),
    ],
)
ops_routes = Router(path="/", route_handlers=[health, readiness, metrics])
