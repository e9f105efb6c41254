"""Headers every response carries, added as the response starts.

A `before_send` hook rather than route middleware, so that answers Litestar
gives before routing (404, 405) get them too.
"""

from __future__ import annotations

from typing import Any

from litestar.datastructures import MutableScopeHeaders

from todo_svc.core.request_id import request_id

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The docs pages load Swagger UI (jsDelivr) and ReDoc (cdn.redoc.ly) scripts and styles from their CDNs.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://cdn.redoc.ly; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://cdn.jsdelivr.net https://cdn.redoc.ly; "
    "connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)
NO_STORE_PREFIXES = ("/api/", "/auth/")


def security_headers(docs_path: str) -> Any:
    """A before-send hook adding the request id, security headers and cache rules."""

    async def add_headers(message: Any, scope: Any) -> None:
        if message["type"] != "http.response.start":
            return
        path: str = scope.get("path", "")
        headers = MutableScopeHeaders.from_message(message)
        headers["X-Request-ID"] = request_id(scope)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Content-Security-Policy"] = DOCS_CSP if path.startswith(docs_path) else API_CSP
        if path.startswith(NO_STORE_PREFIXES):
            headers["Cache-Control"] = "no-store"

    return add_headers
