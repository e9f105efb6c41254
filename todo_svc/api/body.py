"""Strict request bodies.

Litestar converts `data` leniently (`"true"` and `1` become `True`); the
contract wants a 400. `StrictBody[T]` is a DTO that decodes the raw bytes
straight into the msgspec Struct `T` with `strict=True`, and documents `T`
itself as the request body; `StrictStructSchemaPlugin` makes that document
say that unknown fields are rejected. `read_json_ahead` lets a middleware read
a body as the handler will, before it does.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
from litestar.dto import AbstractDTO, DTOFieldDefinition
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Operation, Reference, RequestBody, Schema
from litestar.types import Receive, ReceiveMessage, Scope
from litestar.typing import FieldDefinition

from todo_svc.api.compat import StructSchemaPlugin, msgspec_error_location
from todo_svc.api.schemas import REQUEST_EXAMPLES, InvalidField
from todo_svc.core.scope_headers import first_header

T = TypeVar("T")
_JSON_MEDIA_TYPE = re.compile(r"^\s*application/(?:[\w.+-]+\+)?json\s*(?:;|$)", re.IGNORECASE)


def body_error(exc: msgspec.MsgspecError) -> ValidationException:
    """A 400 naming the offending field, from a msgspec error message."""
    malformed_json = not isinstance(exc, msgspec.ValidationError)  # ValidationError subclasses DecodeError
    if malformed_json:
        return ValidationException(
            "Request body is not valid JSON", extra=[{"field": "body", "message": str(exc)}]
        )
    message, path = msgspec_error_location(exc)
    return ValidationException(
        "Request body is invalid", extra=[{"field": path or "body", "message": message}]
    )


def _json_number(literal: str) -> int | float:
    """JSON Schema counts `2.0` as the integer 2 (and clients send it so): read it as one."""
    number = float(literal)
    return int(number) if number.is_integer() and abs(number) <= 2**53 else number


_JSON = msgspec.json.Decoder(float_hook=_json_number)


def decode_body(raw: bytes, model: type[T]) -> T:
    try:
        try:
            return msgspec.json.decode(raw, type=model, strict=True)  # the fast path: one pass
        except msgspec.ValidationError:
            return msgspec.convert(_JSON.decode(raw), type=model, strict=True)  # 2.0 as an integer
    except msgspec.MsgspecError as exc:
        raise body_error(exc) from None
    except RecursionError:  # arrays or objects nested thousands deep: no body of the API is
        raise ValidationException(
            "Request body is invalid", extra=[{"field": "body", "message": "nested too deeply"}]
        ) from None
    except InvalidField as exc:
        raise ValidationException(
            "Request body is invalid", extra=[{"field": exc.field, "message": exc.message}]
        ) from None


def decode_json_body(raw: bytes, content_type: str | None, model: type[T]) -> T:
    """The body as a handler with `StrictBody[model]` reads it: 415 when it is not JSON, 400 when it
    does not fit `model`."""
    if raw and content_type is not None and not _JSON_MEDIA_TYPE.match(content_type):
        raise HTTPException(status_code=415, detail="Send the request body as application/json")
    return decode_body(raw, model)


async def read_json_ahead(scope: Scope, receive: Receive, model: type[T]) -> tuple[T | None, Receive]:
    """The request body decoded as `StrictBody[model]` will, or None where it will refuse it (the
    handler answers for that), and a `receive` that hands the body to the handler again."""
    raw, receive = await _read_ahead(scope, receive)
    if raw is None:
        return None, receive
    try:
        return decode_json_body(raw, _header(scope, b"content-type"), model), receive
    except HTTPException:
        return None, receive


async def _read_ahead(scope: Scope, receive: Receive) -> tuple[bytes | None, Receive]:
    """The raw body, or None for one over the route's size limit (not read past it) or cut short by
    a disconnect; and a `receive` that replays what was read, then goes on receiving."""
    handler = scope["route_handler"]
    limit: float = math.inf
    if isinstance(handler, HTTPRouteHandler):
        limit = handler.resolve_request_max_body_size() or math.inf
    received: deque[ReceiveMessage] = deque()

    async def replay() -> ReceiveMessage:
        return received.popleft() if received else await receive()

    announced = _header(scope, b"content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        return None, receive
    body = bytearray()
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return None, replay
        body += message.get("body", b"")
        if len(body) > limit:
            return None, replay
        if not message.get("more_body", False):
            return bytes(body), replay


def _header(scope: Scope, name: bytes) -> str | None:
    value = first_header(scope, name)
    return value.decode("latin-1") if value is not None else None


class StrictBody(AbstractDTO[T], Generic[T]):
    """Use as `dto=StrictBody[TaskCreate], return_dto=None` on a handler taking `data: TaskCreate`."""

    @classmethod
    def generate_field_definitions(cls, model_type: type[Any]) -> Generator[DTOFieldDefinition, None, None]:
        yield from ()  # no transfer model: the body decodes into the Struct itself

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        return False

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: Any = None
    ) -> None:
        return None

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any
    ) -> Reference | Schema:
        schema: Reference | Schema = schema_creator.for_field_definition(
            FieldDefinition.from_annotation(cls.model_type)
        )
        return schema

    def decode_bytes(self, value: bytes) -> T:
        return decode_json_body(value, self.asgi_connection.headers.get("content-type"), self.model_type)


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Every Struct documented as it is read and written.

    A field that may be left out (`T | UnsetType`) is `T`, not a one-branch `oneOf` (generators
    name such a branch `…Type0`); in a response every other field is required, defaults too.
    Request bodies (the Structs that forbid unknown fields) get `additionalProperties: false`,
    which Litestar leaves out, an optional field's default in its description instead of a
    `default` keyword, which some SDK generators (openapi-typescript) turn into a required field
    of the request type, and their example as a whole.
    """

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        properties = schema.properties or {}
        for name, field in properties.items():
            properties[name] = _without_single_branch(field)
        config = field_definition.type_.__struct_config__
        if not config.forbid_unknown_fields:
            if not config.omit_defaults:  # a response: every field is sent, defaulted or not
                schema.required = sorted(
                    field.encode_name
                    for field in msgspec.structs.fields(field_definition.type_)
                    if field.default is not msgspec.UNSET
                )
            return schema
        schema.additional_properties = False
        if (example := REQUEST_EXAMPLES.get(field_definition.type_)) is not None:
            schema.examples = [example]
        for field in properties.values():
            if isinstance(field, Schema) and field.default is not None:
                told = f"Defaults to {msgspec.json.encode(field.default).decode()}."
                field.description = f"{field.description} {told}" if field.description else told
                field.default = None
        return schema


def _without_single_branch(field: Schema | Reference) -> Schema | Reference:
    """`{"oneOf": [X], …}` as X with the wrapper's own keywords (description, bounds) kept."""
    if not (isinstance(field, Schema) and field.one_of and len(field.one_of) == 1):
        return field
    (branch,) = field.one_of
    field.one_of = None
    if isinstance(branch, Reference):
        return branch if field == Schema() else Schema(all_of=[branch], description=field.description)
    for attribute in dataclasses.fields(branch):
        if getattr(field, attribute.name) is None:
            setattr(field, attribute.name, getattr(branch, attribute.name))
    return field


@dataclass
class OptionalBodyOperation(Operation):
    """An operation whose request body may be left out (Litestar marks every body required)."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False
