"""Routers: the canonical `/api/v1`, and the unversioned routes of the original design, deprecated."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Router
from litestar.datastructures import MutableScopeHeaders
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from todo_svc.api.auth import AccountController, AuthController
from todo_svc.api.ops import health, readiness
from todo_svc.api.tasks import TaskController

API_V1 = "/api/v1"


def deprecation_headers(old_prefix: str, new_prefix: str) -> Any:
    """Middleware adding `Deprecation` and a `Link` to the successor of each legacy path."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            successor = new_prefix + scope["path"].removeprefix(old_prefix)

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableScopeHeaders.from_message(message)
                    headers["Deprecation"] = "true"
                    headers["Link"] = f'<{successor}>; rel="successor-version"'
                await send(message)

            await app(scope, receive, send_with_headers)

        return middleware

    return wrap


def legacy(controller: type[Controller], path: str, successor_prefix: str) -> type[Controller]:
    """The controller's handlers again at `path`, marked deprecated in OpenAPI and in headers."""

    def get_route_handlers(self: Controller) -> list[BaseRouteHandler]:
        handlers = controller.get_route_handlers(self)
        for handler in handlers:
            if isinstance(handler, HTTPRouteHandler):
                handler.deprecated = True
        return handlers

    old_prefix = path.split("{", 1)[0]
    return type(
        f"Legacy{controller.__name__}",
        (controller,),
        {
            "path": path,
            "get_route_handlers": get_route_handlers,
            "middleware": [deprecation_headers(old_prefix, successor_prefix)],
        },
    )


def operation_id(route_handler: HTTPRouteHandler, http_method: Any, path_components: Any) -> str:
    """`list_tasks` → `listTasks`; its deprecated twin → `listTasksLegacy`."""
    first, *rest = route_handler.handler_name.split("_")
    return first + "".join(word.title() for word in rest) + ("Legacy" if route_handler.deprecated else "")


api_v1 = Router(path=API_V1, route_handlers=[AuthController, AccountController, TaskController])
legacy_routes = Router(
    path="/",
    route_handlers=[
        legacy(AuthController, "/auth", f"{API_V1}/auth/"),
        legacy(TaskController, "/api/{user_id:int}/tasks", f"{API_V1}/users/"),
    ],
)
ops_routes = Router(path="/", route_handlers=[health, readiness])
