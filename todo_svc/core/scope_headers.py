"""Request headers read straight from the ASGI scope, where no framework object exists yet (or
building one would cost more than the lookup: the auth path, the access log)."""

from __future__ import annotations

from typing import Any


def first_header(scope: Any, name: bytes) -> bytes | None:
    """The first value of the header `name` (lower case, as ASGI gives names), or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value  # type: ignore[no-any-return]
    return None
