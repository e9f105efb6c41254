"""The request id: the client's `X-Request-ID` when it is a sane token, a fresh one otherwise."""

from __future__ import annotations

import re
import uuid
from typing import Any

SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_STATE_KEY = "request_id"


def request_id(scope: Any) -> str:
    """The id of this request, decided once per request and kept in the scope state."""
    state = scope.setdefault("state", {})
    if (known := state.get(_STATE_KEY)) is not None:
        return str(known)
    chosen = uuid.uuid4().hex
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and SANE_REQUEST_ID.fullmatch(value):
            chosen = value.decode()
            break
    state[_STATE_KEY] = chosen
    return chosen
