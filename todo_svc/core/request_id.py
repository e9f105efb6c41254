"""The request id: the client's `X-Request-ID` when it is a sane token, a fresh one otherwise."""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

from todo_svc.core.scope_headers import first_header

SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_STATE_KEY = "request_id"
# Unique without a system call per request: a random per-process prefix and a counter.
_counter = itertools.count(1)
_prefix = ""
_prefix_pid = 0


def _fresh_id() -> str:
    global _prefix, _prefix_pid
    if _prefix_pid != os.getpid():
        _prefix, _prefix_pid = os.urandom(8).hex(), os.getpid()
    return f"{_prefix}{next(_counter):08x}"


def request_id(scope: Any) -> str:
    """The id of this request, decided once per request and kept in the scope state."""
    state = scope.setdefault("state", {})
    if (known := state.get(_STATE_KEY)) is not None:
        return str(known)
    given = first_header(scope, b"x-request-id")
    chosen = given.decode() if given is not None and SANE_REQUEST_ID.fullmatch(given) else _fresh_id()
    state[_STATE_KEY] = chosen
    return chosen
