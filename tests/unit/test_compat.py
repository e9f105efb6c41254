"""Canaries for api/compat.py: each `test_canary_*` asserts a Litestar or msgspec behaviour we work
around; when one fails after an upgrade, the workaround it names can go. The other tests check
that the workaround gives what we need."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Annotated, Any

import litestar.plugins
import msgspec
import pytest
from litestar import Controller, Litestar, Request, Response, Router, delete, get, post
from litestar._openapi.schema_generation.plugins import openapi_schema_plugins
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, QueryParameter
from litestar.security.jwt import JWTAuth
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send
from msgspec import UNSET, UnsetType

from todo_svc.api.auth import BearerJWTAuth
from todo_svc.api.body import OptionalBodyOperation, StrictBody, StrictStructSchemaPlugin
from todo_svc.api.compat import (
    StructSchemaPlugin,
    allow_every_method,
    body_left_out,
    msgspec_error_location,
    remounted,
    validation_errors,
    wrap_asgi_handler,
)
from todo_svc.api.openapi import finished
from todo_svc.api.schemas import plain_optional
from todo_svc.api.tasks import exact_bounds

BIG = 2**63 - 1


class Body(msgspec.Struct, forbid_unknown_fields=True):
    title: str
    note: str | UnsetType = UNSET


def document(*handlers: Any, **config: Any) -> dict[str, Any]:
    return Litestar(list(handlers), logging_config=None, **config).openapi_schema.to_schema()


def operation(doc: dict[str, Any], path: str, method: str) -> Any:
    return doc["paths"][path][method]


def parameter(doc: dict[str, Any], path: str, name: str) -> Any:
    (found,) = (p for p in operation(doc, path, "get")["parameters"] if p["name"] == name)
    return found


def show_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    return Response({"detail": exc.detail, "extra": exc.extra}, status_code=400)


# --- 1. Struct schemas: the private plugin ------------------------------------------------------


def test_canary_struct_schema_plugin_is_private_and_the_default() -> None:
    assert not hasattr(litestar.plugins, "StructSchemaPlugin")
    assert any(type(plugin) is StructSchemaPlugin for plugin in openapi_schema_plugins)


@post("/things")
async def make_thing(data: JSONBody[Body | None] = None) -> None:
    """Takes a body that may be left out."""


def test_canary_struct_schemas_allow_unknown_fields_and_wrap_unset_in_one_of() -> None:
    schema = document(make_thing)["components"]["schemas"]["Body"]
    assert "additionalProperties" not in schema
    assert schema["properties"]["note"] == {"oneOf": [{"type": "string"}]}


def test_strict_struct_schemas_forbid_unknown_fields_and_drop_the_one_of() -> None:
    schema = document(make_thing, plugins=[StrictStructSchemaPlugin()])["components"]["schemas"]["Body"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["note"] == {"type": "string"}


# --- 2. One controller at a second path ---------------------------------------------------------


class ThingController(Controller):
    path = "/things"

    @get()
    async def list_things(self) -> None:
        """Lists the things."""


def test_canary_no_layer_marks_handlers_deprecated() -> None:
    assert "deprecated" not in inspect.signature(Router).parameters
    assert "deprecated" not in Controller.__slots__


def test_remounted_controller_changes_only_its_copies() -> None:
    def deprecate(handler: HTTPRouteHandler) -> None:
        handler.deprecated = True

    doc = document(ThingController, remounted(ThingController, "/old/things", "OldThings", deprecate))
    assert operation(doc, "/things", "get")["deprecated"] is False
    assert operation(doc, "/old/things", "get")["deprecated"] is True


# --- 3. OPTIONS ---------------------------------------------------------------------------------


@get("/things", sync_to_thread=False)
def read_things() -> None:
    """Reads."""


@delete("/things", sync_to_thread=False)
def drop_things() -> None:
    """Drops."""


@get("/other", sync_to_thread=False)
def read_other() -> None:
    """Reads another."""


def test_canary_options_lists_only_the_first_handlers_methods() -> None:
    with TestClient(Litestar([read_things, drop_things], logging_config=None)) as client:
        allow = client.options("/things").headers["allow"]
    assert "GET" in allow
    assert "DELETE" not in allow


def test_allow_every_method_lists_every_method_of_the_path() -> None:
    app = Litestar(
        [read_things, drop_things, read_other], before_request=allow_every_method(), logging_config=None
    )
    with TestClient(app) as client:
        answers = [client.options(path) for path in ("/things", "/other", "/things")]  # the last one cached
        assert client.get("/things").status_code == 200  # other methods go on
    assert [answer.status_code for answer in answers] == [204, 204, 204]
    assert [answer.headers["allow"] for answer in answers] == [
        "DELETE, GET, OPTIONS",
        "GET, OPTIONS",
        "DELETE, GET, OPTIONS",
    ]


# --- 4. Error messages read as data -------------------------------------------------------------


class Inner(msgspec.Struct):
    title: str


class Outer(msgspec.Struct, forbid_unknown_fields=True):
    inner: Inner
    items: list[Inner] = []


def validation_error(raw: bytes) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(raw, type=Outer, strict=True)
    return caught.value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"inner": {"title": 1}}', "Expected `str`, got `int` - at `$.inner.title`"),
        (b'{"inner": {"title": "a"}, "x": 1}', "Object contains unknown field `x`"),
        (b'{"inner": {}}', "Object missing required field `title` - at `$.inner`"),
        (
            b'{"inner": {"title": "a"}, "items": [{}]}',
            "Object missing required field `title` - at `$.items[0]`",
        ),
        (b"[]", "Expected `object`, got `array`"),
    ],
)
def test_canary_msgspec_message_formats(raw: bytes, message: str) -> None:
    assert str(validation_error(raw)) == message


def test_canary_msgspec_validation_error_is_a_decode_error() -> None:
    assert issubclass(msgspec.ValidationError, msgspec.DecodeError)  # api/body.py tells them apart


@pytest.mark.parametrize(
    ("raw", "location"),
    [
        (b'{"inner": {"title": 1}}', ("Expected `str`, got `int`", "inner.title")),
        (b'{"inner": {"title": "a"}, "x": 1}', ("Object contains unknown field `x`", "x")),
        (b'{"inner": {}}', ("Object missing required field `title`", "inner.title")),
        (
            b'{"inner": {"title": "a"}, "items": [{}]}',
            ("Object missing required field `title`", "items[0].title"),
        ),
        (b"[]", ("Expected `object`, got `array`", "")),
    ],
)
def test_msgspec_error_location_names_the_field(raw: bytes, location: tuple[str, str]) -> None:
    assert msgspec_error_location(validation_error(raw)) == location


@get("/numbers", sync_to_thread=False)
def read_numbers(n: Annotated[int, QueryParameter()] = 1) -> None:
    """Reads numbers."""


@post("/bodies", dto=StrictBody[Body], return_dto=None, sync_to_thread=False)
def make_body(data: JSONBody[Body]) -> None:
    """Takes a body."""


def test_canary_litestar_parameter_errors_name_the_key_and_the_url() -> None:
    app = Litestar(
        [read_numbers], exception_handlers={ValidationException: show_validation}, logging_config=None
    )
    with TestClient(app) as client:
        body = client.get("/numbers?n=abc").json()
    assert body == {
        "detail": "Validation failed for GET /numbers?n=abc",
        "extra": [{"message": "Expected `int`, got `str`", "key": "n", "source": "query"}],
    }
    assert validation_errors(body["extra"]) == [("n", "Expected `int`, got `str`")]
    assert not body_left_out(body["extra"])


def test_canary_litestar_reports_an_empty_body_as_missing_data() -> None:
    app = Litestar(
        [make_body], exception_handlers={ValidationException: show_validation}, logging_config=None
    )
    with TestClient(app) as client:
        empty = client.post("/bodies", content=b"").json()
        invalid = client.post("/bodies", json={}).json()
    assert empty["extra"] == [{"message": "'data'", "key": "data", "source": "body"}]
    assert body_left_out(empty["extra"])
    assert not body_left_out(invalid["extra"])  # a body that is there goes through our decoder
    assert validation_errors(invalid["extra"]) == [("title", "Object missing required field `title`")]


def test_validation_errors_skip_what_they_cannot_read() -> None:
    assert validation_errors(None) == []
    assert validation_errors([{"message": "m"}, "not an item"]) == [("body", "m")]


# --- 5. Wrapping the whole app ------------------------------------------------------------------


def recorder(seen: list[str]) -> Any:
    def wrap(app: ASGIApp) -> ASGIApp:
        async def recording(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope["path"])
            await app(scope, receive, send)

        return recording

    return wrap


def test_canary_app_middleware_misses_routing_errors() -> None:
    seen: list[str] = []
    with TestClient(Litestar([read_things], middleware=[recorder(seen)], logging_config=None)) as client:
        assert client.get("/things").status_code == 200
        assert client.get("/missing").status_code == 404
        assert client.post("/things").status_code == 405
    assert seen == ["/things"]


def test_canary_litestar_dispatches_every_connection_to_asgi_handler() -> None:
    assert "asgi_handler" in Litestar.__slots__
    assert "self.asgi_handler(" in inspect.getsource(Litestar.__call__)


def test_wrapped_asgi_handler_sees_routing_errors() -> None:
    seen: list[str] = []
    app = Litestar([read_things], logging_config=None)
    wrap_asgi_handler(app, recorder(seen))
    with TestClient(app) as client:
        assert client.get("/things").status_code == 200
        assert client.get("/missing").status_code == 404
        assert client.post("/things").status_code == 405
    assert seen == ["/things", "/missing", "/things"]


# --- 6. OpenAPI ---------------------------------------------------------------------------------


@get("/ranges", sync_to_thread=False)
def read_ranges(
    plain: Annotated[int, QueryParameter(ge=1, le=BIG)] = 1,
    exact: Annotated[int, QueryParameter(**exact_bounds(1, BIG))] = 1,
    optional: Annotated[str | None, QueryParameter()] = None,
    typed: Annotated[str | None, QueryParameter(schema_extra=plain_optional("string"))] = None,
) -> None:
    """Reads ranges."""


def test_canary_bounds_are_published_as_floats() -> None:
    schema = parameter(document(read_ranges), "/ranges", "plain")["schema"]
    assert type(schema["minimum"]) is float
    assert schema["maximum"] != BIG


def test_exact_bounds_keep_integers() -> None:
    schema = parameter(document(read_ranges), "/ranges", "exact")["schema"]
    assert (type(schema["minimum"]), schema["minimum"], schema["maximum"]) == (int, 1, BIG)


def test_canary_optional_parameters_are_one_of_with_null() -> None:
    schema = parameter(document(read_ranges), "/ranges", "optional")["schema"]
    assert schema == {"oneOf": [{"type": "string"}, {"type": "null"}]}


def test_plain_optional_documents_the_type_alone() -> None:
    assert parameter(document(read_ranges), "/ranges", "typed")["schema"] == {"type": "string"}


@post("/optional-bodies", operation_class=OptionalBodyOperation, sync_to_thread=False)
def make_optional(data: JSONBody[Body | None] = None) -> None:
    """Takes a body that may be left out."""


def test_canary_every_request_body_is_required() -> None:
    assert operation(document(make_thing), "/things", "post")["requestBody"]["required"] is True


def test_optional_body_operation_leaves_the_body_optional() -> None:
    body = operation(document(make_optional), "/optional-bodies", "post")["requestBody"]
    assert body["required"] is False


@get("/public", security=[], sync_to_thread=False)
def read_public() -> None:
    """Public."""


def test_canary_an_empty_security_list_is_dropped() -> None:
    assert "security" not in operation(document(read_public), "/public", "get")


def test_finished_says_security_explicitly() -> None:
    assert operation(finished(document(read_public)), "/public", "get")["security"] == []


def test_canary_response_spec_takes_no_headers() -> None:
    assert "headers" not in {field.name for field in dataclasses.fields(ResponseSpec)}


@get("/sorted", sync_to_thread=False)
def read_sorted(
    sort: Annotated[str, QueryParameter(schema_extra={"x-enum-varnames": ["A"]})] = "a",
) -> None:
    """Sorted."""


def test_canary_schema_extra_refuses_x_keys() -> None:
    with pytest.raises(ValueError, match="x-enum-varnames"):
        document(read_sorted)


def jwt_document(auth_class: type[JWTAuth[Any, Any]]) -> dict[str, Any]:
    auth = auth_class(retrieve_user_handler=lambda token, connection: None, token_secret="s" * 32)
    return document(read_public, on_app_init=[auth.on_app_init])


def test_canary_jwt_auth_secures_the_whole_document() -> None:
    assert jwt_document(JWTAuth)["security"] == [{"BearerToken": []}]


def test_canary_jwt_auth_names_its_http_scheme() -> None:
    scheme = jwt_document(JWTAuth)["components"]["securitySchemes"]["BearerToken"]
    assert (scheme["type"], scheme["name"]) == ("http", "Authorization")


def test_bearer_jwt_auth_documents_security_per_operation() -> None:
    doc = jwt_document(BearerJWTAuth)
    assert "security" not in doc
    assert "name" not in doc["components"]["securitySchemes"]["BearerToken"]
