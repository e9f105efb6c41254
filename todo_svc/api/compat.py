"""Where we work around Litestar 2.25 and msgspec: the mechanisms that lean on their internals.

One short section per workaround: what the library does, what we need, the upstream link. Each
has a canary in tests/unit/test_compat.py that asserts the library behaviour is still there, so
the day an upgrade fails a canary, that workaround can go (Litestar is pinned `<2.26` for this).

Workarounds that stay beside their single use, their canaries in the same test file:
- `exact_bounds` (api/tasks.py): Litestar publishes `ge`/`le` as floats, and `2**63 - 1` is not
  one. No upstream issue found.
- `plain_optional` (api/schemas.py): Litestar documents `T | None` parameters as `oneOf` with
  null; closed as intended in https://github.com/litestar-org/litestar/issues/2730.
- `OptionalBodyOperation` (api/body.py): Litestar marks every request body required. No
  upstream issue found.
- `finished` (api/openapi.py): Litestar drops an operation's empty `security` list
  (https://github.com/litestar-org/litestar/issues/4016), `ResponseSpec` takes no headers
  (https://github.com/litestar-org/litestar/pull/5066, open) and `schema_extra` refuses `x-`
  keys (no upstream issue found; litestar#3766 only let in JSON Schema's camelCase names).
- `BearerJWTAuth` (api/auth.py): Litestar's JWT auth puts `security` on the whole document
  (https://github.com/litestar-org/litestar/issues/3013) and a `name` on the http scheme
  (https://github.com/litestar-org/litestar/issues/5050).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Controller, Litestar, Request, Response

# The plugin Litestar documents msgspec Structs with; not exported anywhere public.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.enums import HttpMethod
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.status_codes import HTTP_204_NO_CONTENT
from litestar.types import ASGIApp, BeforeRequestHookHandler

__all__ = [
    "StructSchemaPlugin",
    "allow_every_method",
    "body_left_out",
    "msgspec_error_location",
    "remounted",
    "validation_errors",
    "wrap_asgi_handler",
]


# --- Struct schemas: the plugin to subclass is private ----------------------------------------
# Litestar documents a Struct without `additionalProperties: false` and an `T | UnsetType` field as
# a one-branch `oneOf`; api/body.py's `StrictStructSchemaPlugin` fixes both, and can only do it as
# a subclass of `StructSchemaPlugin`, which lives in `litestar._openapi` (imported above).
# Upstream: no issue found for either; https://github.com/litestar-org/litestar/issues/4575 (open)
# collects the gaps of Litestar's Struct schemas.


# --- One controller at a second path ------------------------------------------------------------
# Litestar takes a controller's path from its class, copies its handlers on every registration, and
# offers no layer (Router, Controller) that marks handlers deprecated or changes their description:
# a controller cannot be mounted twice with different `opt`/`deprecated`. A subclass with another
# `path` whose `get_route_handlers` adjusts the copies does it. No upstream issue found.


def remounted(
    controller: type[Controller], path: str, name: str, adjust: Callable[[HTTPRouteHandler], None]
) -> type[Controller]:
    """`controller`'s handlers again at `path`, each HTTP handler's copy passed to `adjust`."""

    def get_route_handlers(self: Controller) -> list[BaseRouteHandler]:
        handlers = controller.get_route_handlers(self)  # copies: the canonical handlers stay as they are
        for handler in handlers:
            if isinstance(handler, HTTPRouteHandler):
                adjust(handler)
        return handlers

    return type(name, (controller,), {"path": path, "get_route_handlers": get_route_handlers})


# --- OPTIONS with every method of the path ------------------------------------------------------
# Litestar 2 answers OPTIONS with the methods of the first handler registered on a path, e.g.
# `Allow: DELETE, OPTIONS` for GET and DELETE; we answer with all of them.
# Upstream: https://github.com/litestar-org/litestar/issues/4169 (fixed in 3.0 only).


def allow_every_method() -> BeforeRequestHookHandler:
    """A `before_request` hook answering OPTIONS with every method of the path (others go on).

    One per app: it reads the app's routes on its first OPTIONS and keeps the answer per path.
    """
    allow: dict[str, str] = {}  # path template → the Allow header

    async def answer_options(request: Request[Any, Any, Any]) -> Response[None] | None:
        if request.method != HttpMethod.OPTIONS:
            return None
        if not allow:
            for route in request.app.routes:
                allow.setdefault(route.path_format, ", ".join(sorted(route.methods)))
        headers = {"Allow": allow[request.scope["path_template"]]}
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers=headers)

    return answer_options


# --- Error messages read as data ----------------------------------------------------------------
# msgspec says which field is wrong only in its message ("Expected `str`, got `int` - at `$.title`",
# "Object contains unknown field `x`"): https://github.com/msgspec/msgspec/issues/264 (open).
# Litestar reports parameters in `ValidationException.extra` as `{"message", "key", "source"}`, and
# on an empty body skips the body decoder and reports the handler's `data` missing. No upstream
# issue found for those shapes.

_AT = " - at `$"
_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]*)`")


def msgspec_error_location(exc: msgspec.MsgspecError) -> tuple[str, str]:
    """`(message, field path)` of a msgspec error; the path is "" for the document itself.

    An unknown or a missing field is named itself, not the object that has or lacks it.
    """
    message, _, path = str(exc).partition(_AT)
    path = path.rstrip("`").lstrip(".")
    if named := _NAMED_FIELD.search(message):
        path = f"{path}.{named['name']}".lstrip(".")
    return message, path


def body_left_out(extra: Any) -> bool:
    """Whether Litestar's `ValidationException.extra` says the body was empty."""
    return isinstance(extra, list) and any(
        isinstance(item, dict) and item.get("source") == "body" and item.get("key") == "data"
        for item in extra
    )


def validation_errors(extra: Any) -> list[tuple[str, str]]:
    """`(field, message)` per item of a `ValidationException.extra` ("body" when it names none).

    Litestar names a parameter `key`; our body decoder (api/body.py) names a `field`.
    """
    if not isinstance(extra, list):
        return []
    return [
        (str(item.get("field") or item.get("key") or "body"), str(item.get("message", "")))
        for item in extra
        if isinstance(item, dict)
    ]


# --- Wrapping the whole app ---------------------------------------------------------------------
# Litestar's `middleware=` runs only once a route matched: a 404 or 405 never passes it, and the
# exception handlers' answers are sent outside it. Replacing `app.asgi_handler` (what
# `Litestar.__call__` dispatches every HTTP connection to; an attribute, not documented API) puts
# a wrapper outside routing and the exception handlers. Upstream: the limitation since
# https://github.com/litestar-org/litestar/issues/175; no issue for a public hook found.


def wrap_asgi_handler(app: Litestar, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
    """Make `wrap(handler)` the app's entry point for every connection, routing errors included."""
    app.asgi_handler = wrap(app.asgi_handler)
