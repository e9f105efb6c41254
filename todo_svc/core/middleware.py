"""The headers every response carries, added by one pure-ASGI wrapper around the whole app.

It wraps Litestar's own ASGI handler (outside routing and the exception
handler), so answers given before any route matched (404, 405) and errors get
them too, and it appends raw header pairs instead of rebuilding header maps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from todo_svc.core.request_id import request_id

Header = tuple[bytes, bytes]
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The docs pages (todo_svc/api/docs.py) load every script, stylesheet, image and worker from
# /docs/assets/, so 'self' is all they need, with one exception: ReDoc's bundle adds two <style>
# elements of its own, allowed by their exact content's hash (no 'unsafe-inline'):
# - the empty one styled-components fills through the CSSOM (insertRule, which CSP does not
#   govern): the hash of the empty string, which lets nothing else in;
# - perfect-scrollbar's fixed stylesheet, whose hash changes with the ReDoc version (then the
#   browser test, tests/test_docs_browser.py, names the new one in its CSP violation).
DOCS_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # "" (styled-components)
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",  # perfect-scrollbar (ReDoc 2.5.2)
)
DOCS_CSP = (
    f"default-src 'none'; script-src 'self'; style-src 'self' {' '.join(DOCS_STYLE_HASHES)}; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
NO_STORE_PREFIXES = ("/api/", "/auth/")
_SECURITY: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


class ResponseHeaders:
    """Request id, security headers and cache rules on every response.

    `extra` may add headers that depend on the matched route (it sees the scope
    as the response starts).
    """

    def __init__(
        self, app: ASGIApp, docs_path: str, extra: Callable[[Scope], Iterable[Header]] | None = None
    ) -> None:
        self._app = app
        self._docs_path = docs_path
        self._extra = extra
        api = (*_SECURITY, (b"content-security-policy", API_CSP.encode()))
        self._docs = (*_SECURITY, (b"content-security-policy", DOCS_CSP.encode()))
        self._api = api
        self._api_no_store = (*api, (b"cache-control", b"no-store"))

    def _fixed(self, path: str) -> tuple[Header, ...]:
        if path.startswith(NO_STORE_PREFIXES):
            return self._api_no_store
        return self._docs if path.startswith(self._docs_path) else self._api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        fixed = self._fixed(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: Any = list(message.get("headers") or ())
                headers.append((b"x-request-id", request_id(scope).encode()))
                headers.extend(fixed)
                if self._extra is not None:
                    headers.extend(self._extra(scope))
                message["headers"] = headers
            await send(message)

        await self._app(scope, receive, send_with_headers)
