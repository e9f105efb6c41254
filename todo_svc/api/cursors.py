"""Opaque, signed positions: the list's `next_cursor` and the changes feed's `since` token.

A token is the position (msgpack) and an HMAC of it under a key derived from the service's
secret, both base64url. It names the user it was issued to and, for a list, the sort and the
filters it walks, so a token that was altered, issued to another user, made for another list or
signed with another secret is refused (400); clients never see inside it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Annotated, Any, cast

import msgspec
from litestar.datastructures import State
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from todo_svc.api.schemas import plain_optional
from todo_svc.services.tasks import FeedPosition, TaskQuery, TaskRecord

CURSOR_MAX_LENGTH = 1024
_KEY_LABEL = b"todo-svc positions v1"
_MAC_BYTES = 16

CursorParam = Annotated[
    str | None,
    QueryParameter(
        min_length=1,
        max_length=CURSOR_MAX_LENGTH,
        description="The `next_cursor` of the previous page: the page after it (with the same sort and "
        "filters; not with `offset`).",
        schema_extra=plain_optional("string"),
    ),
]
SinceParam = Annotated[
    str | None,
    QueryParameter(
        min_length=1,
        max_length=CURSOR_MAX_LENGTH,
        description="The `next_since` of the previous answer; left out, the feed starts now.",
        schema_extra=plain_optional("string"),
    ),
]


class _ListPosition(msgspec.Struct, array_like=True, tag="l"):
    user_id: int
    list_digest: bytes
    value: Any  # the sort column's: a datetime or a title (msgpack keeps which)
    task_id: int


class _FeedPosition(msgspec.Struct, array_like=True, tag="f"):
    user_id: int
    change: int
    as_of: datetime


_Position = _ListPosition | _FeedPosition


def _list_digest(query: TaskQuery) -> bytes:
    """What a cursor is bound to besides the user: the list's sort and filters."""
    return hashlib.blake2b(
        msgspec.msgpack.encode((query.sort, query.completed, query.q)), digest_size=8
    ).digest()


def invalid(parameter: str, message: str) -> ValidationException:
    return ValidationException(
        detail="Request parameters are invalid", extra=[{"key": parameter, "message": message}]
    )


class Positions:
    """Issues and reads the tokens of one service secret. Handlers take it from the app's state
    (`positions_of`): a second dependency of the list would cost it a quarter of its CPU (Litestar
    resolves sibling dependencies concurrently, in tasks: just bench-instructions)."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self._decoder = msgspec.msgpack.Decoder(_Position)

    def _sign(self, position: _Position) -> str:
        payload = msgspec.msgpack.encode(position)
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(mac + payload).rstrip(b"=").decode()

    def _read(self, token: str, parameter: str) -> _Position:
        try:
            signed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise invalid(parameter, "Not a token this service issued") from None
        mac, payload = signed[:_MAC_BYTES], signed[_MAC_BYTES:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            raise invalid(parameter, "Not a token this service issued (altered, or from an earlier secret)")
        try:
            return self._decoder.decode(payload)
        except msgspec.DecodeError:  # signed, so only a token of another format version
            raise invalid(parameter, "A token of an earlier version; start again without it") from None

    def next_cursor(self, user_id: int, query: TaskQuery, last: TaskRecord) -> str:
        """The cursor of the page after the one that ends with `last`."""
        value: Any = getattr(last, query.sort.lstrip("-"))
        return self._sign(_ListPosition(user_id, _list_digest(query), value, last.id))

    def after(self, token: str, user_id: int, query: TaskQuery) -> tuple[Any, int]:
        """The position a list cursor names, for this user's list with these sort and filters."""
        position = self._read(token, "cursor")
        if not isinstance(position, _ListPosition) or position.user_id != user_id:
            raise invalid("cursor", "This cursor was not issued for this user's task list")
        if position.list_digest != _list_digest(query):
            raise invalid("cursor", "This cursor belongs to a list with another sort or other filters")
        return position.value, position.task_id

    def since_token(self, user_id: int, position: FeedPosition) -> str:
        return self._sign(_FeedPosition(user_id, position.change, position.as_of))

    def since(self, token: str, user_id: int) -> FeedPosition:
        position = self._read(token, "since")
        if not isinstance(position, _FeedPosition) or position.user_id != user_id:
            raise invalid("since", "This token was not issued for this user's changes feed")
        return FeedPosition(position.change, position.as_of)


def positions_of(state: State) -> Positions:
    return cast("Positions", state.positions)
