"""The OpenAPI document: valid 3.1, committed, and shaped so that SDK generators read it right."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from openapi_spec_validator import OpenAPIV31SpecValidator

Client = AsyncTestClient[Litestar]

BEARER_PROTECTED = {
    ("get", "/api/v1/users/me"),
    ("delete", "/api/v1/users/me"),
    ("get", "/api/v1/users/{user_id}/tasks"),
    ("post", "/api/v1/users/{user_id}/tasks"),
    ("get", "/api/v1/users/{user_id}/tasks/{task_id}"),
    ("put", "/api/v1/users/{user_id}/tasks/{task_id}"),
    ("patch", "/api/v1/users/{user_id}/tasks/{task_id}"),
    ("patch", "/api/v1/users/{user_id}/tasks/{task_id}/complete"),
    ("delete", "/api/v1/users/{user_id}/tasks/{task_id}"),
    ("get", "/api/{user_id}/tasks"),
    ("post", "/api/{user_id}/tasks"),
    ("get", "/api/{user_id}/tasks/{task_id}"),
    ("put", "/api/{user_id}/tasks/{task_id}"),
    ("patch", "/api/{user_id}/tasks/{task_id}"),
    ("patch", "/api/{user_id}/tasks/{task_id}/complete"),
    ("delete", "/api/{user_id}/tasks/{task_id}"),
}
PUBLIC_OPERATIONS = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("get", "/health"),
    ("get", "/health/ready"),
}
# Public by API.md too, once served: the refresh token travels in the body.
ALSO_PUBLIC = {("post", "/api/v1/auth/refresh"), ("post", "/auth/refresh"), ("get", "/metrics")}
LEGACY_SUCCESSORS = {
    ("post", "/auth/register"): ("post", "/api/v1/auth/register"),
    ("post", "/auth/login"): ("post", "/api/v1/auth/login"),
    **{
        (method, path): (method, path.replace("/api/{user_id}/", "/api/v1/users/{user_id}/"))
        for method, path in BEARER_PROTECTED
        if path.startswith("/api/{user_id}")
    },
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
async def openapi(client: Client) -> dict[str, Any]:
    response = await client.get("/docs/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def validate_31(document: dict[str, Any]) -> Iterator[Any]:
    yield from OpenAPIV31SpecValidator(document).iter_errors()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def response_schema(response: dict[str, Any]) -> dict[str, Any] | None:
    content = response.get("content", {})
    media = content.get("application/json")
    return media.get("schema") if media else None


def test_openapi_version(openapi: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.1\.\d+", openapi["openapi"])


def test_every_documented_route_is_present(openapi: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(openapi)}
    missing = (BEARER_PROTECTED | PUBLIC_OPERATIONS) - documented
    assert not missing, sorted(missing)


def test_every_served_api_route_is_documented(openapi: dict[str, Any], app: Litestar) -> None:
    documented = {(method, path) for method, path, _ in operations(openapi)}
    served = {
        (method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in app.routes
        if isinstance(route, HTTPRoute) and not route.path.startswith(("/docs", "/metrics"))
        for method in route.methods
        if method not in {"OPTIONS", "HEAD"}
    }
    assert served, "the app serves no routes?"
    assert not served - documented, sorted(served - documented)


def test_operation_ids_are_unique_and_readable(openapi: dict[str, Any]) -> None:
    ids = [operation.get("operationId") for _, _, operation in operations(openapi)]
    assert all(ids), ids
    assert len(ids) == len(set(ids)), sorted(ids)
    for operation_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*", operation_id), operation_id
        assert len(operation_id) <= 40, operation_id
    by_route = {(method, path): operation["operationId"] for method, path, operation in operations(openapi)}
    assert by_route[("get", "/api/v1/users/{user_id}/tasks")] == "listTasks"
    assert by_route[("post", "/api/v1/users/{user_id}/tasks")] == "createTask"
    assert by_route[("get", "/api/{user_id}/tasks")] == "listTasksLegacy"


def test_legacy_operations_are_deprecated_twins(openapi: dict[str, Any]) -> None:
    by_route = {(method, path): operation for method, path, operation in operations(openapi)}
    for legacy, successor in LEGACY_SUCCESSORS.items():
        old, new = by_route[legacy], by_route[successor]
        assert old.get("deprecated") is True, legacy
        assert not new.get("deprecated"), successor
        assert old["operationId"] != new["operationId"]
        assert old["operationId"] == new["operationId"] + "Legacy"
        # in words too, where generators that drop `deprecated` keep the description
        assert old["description"].startswith(f"Deprecated: use `{new['operationId']}`"), old["description"]
    for route, operation in by_route.items():
        if route not in LEGACY_SUCCESSORS:
            assert not operation.get("deprecated"), route


def bearer_schemes(document: dict[str, Any]) -> set[str]:
    schemes = document.get("components", {}).get("securitySchemes", {})
    return {
        name
        for name, scheme in schemes.items()
        if scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "bearer"
    }


def test_the_committed_document_is_the_one_served(openapi: dict[str, Any], project_root: Path) -> None:
    """docs/openapi.json is the contract under review: a change to the served one must change it."""
    committed = json.loads((project_root / "docs" / "openapi.json").read_text())
    assert committed == openapi, "the served document changed: run `todo-svc openapi -o docs/openapi.json`"


def test_todo_svc_openapi_prints_the_served_document(openapi: dict[str, Any], tmp_path: Path) -> None:
    printed = run_cli("openapi", database_url="sqlite:///unused.db", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == openapi


def test_the_served_document_is_valid_openapi_3_1(openapi: dict[str, Any]) -> None:
    errors = [f"{'/'.join(map(str, error.path))}: {error.message[:200]}" for error in validate_31(openapi)]
    assert errors == []


def test_request_bodies_carry_no_defaults_that_generators_read_as_required(openapi: dict[str, Any]) -> None:
    """openapi-typescript makes a defaulted field required: the default is said in words instead."""
    schemas = openapi["components"]["schemas"]
    bodies = {
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for _, _, operation in operations(openapi)
        if "requestBody" in operation
    }
    assert {"TaskCreate", "TaskReplace", "Credentials"} <= bodies
    for name in bodies:
        for field, schema in schemas[name].get("properties", {}).items():
            assert "default" not in schema, (name, field, schema)
    assert "Defaults to false." in schemas["TaskCreate"]["properties"]["completed"]["description"]


def test_optional_header_parameters_are_plain_strings(openapi: dict[str, Any]) -> None:
    """A `string | null` header makes generated clients accept None, and send it."""
    headers = [
        (method, path, parameter)
        for method, path, operation in operations(openapi)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "header"
    ]
    names = {parameter["name"] for _, _, parameter in headers}
    assert names >= {"If-Match", "If-None-Match", "Idempotency-Key"}
    for method, path, parameter in headers:
        assert parameter["schema"].get("type") == "string", (method, path, parameter)
        assert "oneOf" not in parameter["schema"], (method, path, parameter)


def test_every_operation_documents_500_and_the_headers_it_sends(openapi: dict[str, Any]) -> None:
    """A client generated from the document parses a 500 as the error body, and finds the headers
    each answer carries."""
    for method, path, operation in operations(openapi):
        assert "500" in operation["responses"], (method, path)

    def success_headers(method: str, path: str) -> set[str]:
        responses = openapi["paths"][path][method]["responses"]
        (success,) = (response for status, response in responses.items() if status.startswith("2"))
        return set(success.get("headers", {}))

    tasks, task = "/api/v1/users/{user_id}/tasks", "/api/v1/users/{user_id}/tasks/{task_id}"
    assert {"Location", "ETag", "Idempotent-Replayed"} <= success_headers("post", tasks)
    assert "Idempotent-Replayed" in success_headers("post", f"{tasks}/batch")
    for method, path in (("get", task), ("put", task), ("patch", task), ("patch", f"{task}/complete")):
        assert "ETag" in success_headers(method, path), (method, path)
    assert "ETag" in openapi["paths"][task]["get"]["responses"]["304"]["headers"]


def test_response_fields_that_are_always_sent_are_required(openapi: dict[str, Any]) -> None:
    """A defaulted field of an answer is still sent: generators must not type it `| Unset`."""
    schemas = openapi["components"]["schemas"]
    assert "token_type" in schemas["TokenPair"]["required"]
    assert schemas["Health"]["required"] == ["status"]
    assert set(schemas["TaskOut"]["required"]) == set(schemas["TaskOut"]["properties"])
    assert "errors" not in schemas["ErrorBody"]["required"]  # left out unless there are field errors


def test_no_single_branch_one_of(openapi: dict[str, Any]) -> None:
    """A field that may be left out is its type: generators name a lone branch `…Type0`."""

    def walk(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, dict):
            if len(node.get("oneOf", [None, None])) == 1 or len(node.get("anyOf", [None, None])) == 1:
                yield where
            for key, value in node.items():
                yield from walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{where}[{index}]")

    assert list(walk(openapi, "")) == []


def test_protected_operations_require_bearer_and_public_ones_do_not(openapi: dict[str, Any]) -> None:
    """Per operation, with nothing at the root: SDK generators read only an operation's own security."""
    bearer = bearer_schemes(openapi)
    assert bearer, openapi.get("components", {}).get("securitySchemes")
    assert "security" not in openapi
    for method, path, operation in operations(openapi):
        effective = operation.get("security", [])
        requirement_names = [set(requirement) for requirement in effective]
        if (method, path) in PUBLIC_OPERATIONS:
            assert operation.get("security") == [], (method, path, effective)  # said, not left out
        elif (method, path) not in ALSO_PUBLIC:
            # everything else (batches and logout included) needs the token: no anonymous alternative
            assert requirement_names, (method, path)
            assert all(names & bearer for names in requirement_names), (method, path, effective)


def test_error_responses_use_the_error_body(openapi: dict[str, Any]) -> None:
    for method, path, operation in operations(openapi):
        for status, response in operation["responses"].items():
            schema = response_schema(response)
            if status.startswith(("4", "5")):
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status, schema)
            elif schema is not None:
                # a success is never documented as possibly being an error body
                assert "ErrorBody" not in str(schema), (method, path, status, schema)


def test_litestar_default_400_schema_is_not_documented(openapi: dict[str, Any]) -> None:
    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    for node in walk(openapi):
        properties = node.get("properties")
        if isinstance(properties, dict):
            assert not {"status_code", "detail", "extra"} <= properties.keys(), node


def test_error_body_schema_matches_the_contract(openapi: dict[str, Any]) -> None:
    schema = openapi["components"]["schemas"]["ErrorBody"]
    assert {"error", "detail", "status_code", "timestamp", "request_id", "errors"} <= schema[
        "properties"
    ].keys()
    assert {"error", "detail", "status_code", "timestamp", "request_id"} <= set(schema["required"])


def test_expected_error_statuses_are_documented(openapi: dict[str, Any]) -> None:
    for method, path, operation in operations(openapi):
        statuses = set(operation["responses"])
        if (method, path) not in PUBLIC_OPERATIONS | ALSO_PUBLIC:
            assert "401" in statuses, (method, path)
        if "{user_id}" in path:
            assert "403" in statuses, (method, path)
        if "{task_id}" in path:
            assert "404" in statuses, (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= statuses, (method, path)


def test_task_create_documents_its_body_and_201(openapi: dict[str, Any]) -> None:
    operation = openapi["paths"]["/api/v1/users/{user_id}/tasks"]["post"]
    body = resolve(openapi, operation["requestBody"]["content"]["application/json"]["schema"])
    assert {"title", "description", "completed"} == set(body["properties"])
    assert body.get("required") == ["title"]
    created = operation["responses"]["201"]
    assert response_schema(created) == {"$ref": "#/components/schemas/TaskOut"}
    task_out = resolve(openapi, response_schema(created) or {})
    assert {"id", "user_id", "title", "description", "completed", "created_at", "updated_at"} <= set(
        task_out["properties"]
    )


def test_error_answers_document_the_headers_clients_act_on(openapi: dict[str, Any]) -> None:
    """401 says how to authenticate (and whether to refresh), 429 how long to wait."""
    expected = {"401": ("WWW-Authenticate", "string"), "429": ("Retry-After", "integer")}
    seen = set()
    for method, path, operation in operations(openapi):
        for status, (header, json_type) in expected.items():
            if status in operation["responses"]:
                headers = operation["responses"][status].get("headers", {})
                assert headers.get(header, {}).get("schema", {}).get("type") == json_type, (method, path)
                seen.add(status)
    assert seen == set(expected)


def test_sort_members_have_readable_names(openapi: dict[str, Any]) -> None:
    """Generators name `-created_at` VALUE_1 unless told: x-enum-varnames tells them."""
    (sort,) = (
        parameter["schema"]
        for parameter in openapi["paths"]["/api/v1/users/{user_id}/tasks"]["get"]["parameters"]
        if parameter["name"] == "sort"
    )
    names = dict(zip(sort["enum"], sort["x-enum-varnames"], strict=True))
    assert names["-created_at"] == "CREATED_AT_DESC"
    assert names["title"] == "TITLE_ASC"
    assert len(set(names.values())) == len(names)


def test_list_parameters_say_what_the_list_accepts(openapi: dict[str, Any]) -> None:
    """`q=null` searches for "null", so `q` is a plain string; `completed=null` means all tasks."""
    parameters = openapi["paths"]["/api/v1/users/{user_id}/tasks"]["get"]["parameters"]
    types = {parameter["name"]: parameter["schema"] for parameter in parameters}
    assert types["q"]["type"] == "string"
    assert "oneOf" not in types["q"]
    assert types["completed"]["oneOf"] == [{"type": "boolean"}, {"type": "null"}]
    assert (types["limit"]["minimum"], types["limit"]["maximum"]) == (1, 100)


async def test_every_request_body_example_is_accepted(openapi: dict[str, Any], client: Client) -> None:
    """ "Try it out" starts from each body's example: it must be a request the API takes."""
    register = await client.post(
        "/api/v1/auth/register", json=example_of(openapi, "post", "/api/v1/auth/register")
    )
    assert register.status_code == 201, register.text
    tokens = (
        await client.post("/api/v1/auth/login", json=example_of(openapi, "post", "/api/v1/auth/login"))
    ).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    tasks = f"/api/v1/users/{tokens['user']['id']}/tasks"
    created = await client.post(
        tasks, json=example_of(openapi, "post", "/api/v1/users/{user_id}/tasks"), headers=bearer
    )
    assert created.status_code == 201, created.text
    task = f"{tasks}/{created.json()['id']}"
    for method, path, url, status in (
        ("post", "/api/v1/users/{user_id}/tasks/batch", f"{tasks}/batch", 201),
        ("put", "/api/v1/users/{user_id}/tasks/{task_id}", task, 200),
        ("patch", "/api/v1/users/{user_id}/tasks/{task_id}", task, 200),
        ("patch", "/api/v1/users/{user_id}/tasks/{task_id}/complete", f"{task}/complete", 200),
        ("post", "/api/v1/users/{user_id}/tasks/batch/complete", f"{tasks}/batch/complete", None),
        ("post", "/api/v1/users/{user_id}/tasks/batch/delete", f"{tasks}/batch/delete", None),
    ):
        answer = await client.request(method, url, json=example_of(openapi, method, path), headers=bearer)
        # the batch examples name ids 1 and 2, which may be no task of this user's: 404, not 400
        assert answer.status_code in ((status,) if status else (200, 404)), (path, answer.text)
    refresh = example_of(openapi, "post", "/api/v1/auth/refresh")
    assert set(refresh) == {"refresh_token"}


def example_of(openapi: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    body = openapi["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    (example,) = resolve(openapi, body)["examples"]
    assert isinstance(example, dict)
    return example
