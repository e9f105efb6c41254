"""One log line and the request metrics for every HTTP request, from one timing.

A pure-ASGI wrapper around the whole app, so answers given before any route
matched (404, 405) and errors count too. The route is the matched template
(`unmatched` when none did); the user is the id the auth middleware found, never
the email; no header or body is logged.
"""

from __future__ import annotations

import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from todo_svc.core import metrics
from todo_svc.core.logging import AccessLog
from todo_svc.core.request_id import request_id

UNMATCHED = "unmatched"


class RequestTelemetry:
    def __init__(self, app: ASGIApp, access_log: AccessLog) -> None:
        self._app = app
        self._log = access_log
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # label values → metric children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception that escaped everything

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.IN_FLIGHT.inc()
        try:
            await self._app(scope, receive, send_and_note_status)
        finally:
            metrics.IN_FLIGHT.dec()
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = metrics.method_label(scope["method"])  # type: ignore[typeddict-item]
        route = scope.get("path_template") or UNMATCHED
        key = (method, route, status)
        if (children := self._children.get(key)) is None:  # the label sets are few: keep them
            children = self._children[key] = (
                metrics.REQUESTS.labels(method, route, status),
                metrics.REQUEST_DURATION.labels(method, route),
            )
        requests, duration = children
        requests.inc()
        duration.observe(seconds)
        user = scope.get("user")
        self._log.request(method, route, status, seconds, request_id(scope), getattr(user, "id", None))
