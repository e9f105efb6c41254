"""The contract's OpenAPI document: Litestar's, finished with what its spec objects cannot say.

Litestar drops an empty `security` list, keeps no headers on responses without a body and refuses `x-`
keys in a schema; generators need all three. `finished` adds them to the generated document,
and the served `/docs/openapi.json`, the docs pages and `todo-svc openapi` all read the result.
(Upstream links: api/compat.py; canaries pinning the three: tests/unit/test_compat.py.)
"""

from __future__ import annotations

import copy
from typing import Any, get_args

from litestar import Litestar, Request
from litestar.openapi.plugins import JsonRenderPlugin

from todo_svc.services.tasks import SortKey

OPERATION_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
RESPONSE_HEADERS: dict[str, dict[str, Any]] = {  # by status, on every operation that documents it
    "304": {"ETag": {"description": "The current version tag.", "schema": {"type": "string"}}},
    "401": {
        "WWW-Authenticate": {
            "description": 'The bearer challenge; `error="invalid_token"` with "expired" in'
            " `error_description` means: refresh the access token.",
            "schema": {"type": "string"},
        }
    },
    "429": {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer", "minimum": 0},
        }
    },
}


def sort_varnames(keys: tuple[str, ...]) -> list[str]:
    """`-created_at` → `CREATED_AT_DESC`, `title` → `TITLE_ASC`: enum member names for generators."""
    return [key.lstrip("-").upper() + ("_DESC" if key.startswith("-") else "_ASC") for key in keys]


SORT_KEYS: tuple[str, ...] = get_args(SortKey)


def finished(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of `document` with explicit security, the headers of bodiless and error answers, and
    enum member names."""
    document = copy.deepcopy(document)
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in OPERATION_METHODS:
                _finish_operation(operation)
    return document


def _finish_operation(operation: dict[str, Any]) -> None:
    operation.setdefault("security", [])  # public: said so, so no generator falls back to a default
    for status, headers in RESPONSE_HEADERS.items():
        if (response := operation.get("responses", {}).get(status)) is not None:
            response.setdefault("headers", {}).update(headers)
    for parameter in operation.get("parameters", ()):
        schema = parameter.get("schema", {})
        if parameter.get("in") == "query" and schema.get("enum") == list(SORT_KEYS):
            schema["x-enum-varnames"] = sort_varnames(SORT_KEYS)


def contract_document(app: Litestar) -> dict[str, Any]:
    """The document `app` serves at `/docs/openapi.json`."""
    return finished(app.openapi_schema.to_schema())


class ContractJsonPlugin(JsonRenderPlugin):
    """Serves the finished document at `/openapi.json` under the docs path (rendered once)."""

    def __init__(self) -> None:
        super().__init__(path="/openapi.json")
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            self._rendered = self.render_json(request, finished(openapi_schema))
        return self._rendered
