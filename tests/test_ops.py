"""Probes, the OpenAPI document and the docs pages."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import make_settings, run_cli
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from openapi_spec_validator import OpenAPIV31SpecValidator

from todo_svc.app import create_app

Client = AsyncTestClient[Litestar]

CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:1/x"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
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


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["status_code"] == status
    assert body["error"] == HTTPStatus(status).phrase
    assert body["detail"]
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() == timedelta(0)
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.fixture
async def unreachable_db_client() -> AsyncIterator[Client]:
    """The app with its database on a port where nothing listens."""
    async with AsyncTestClient(app=create_app(make_settings(CLOSED_PORT_URL))) as test_client:
        yield test_client


# --------------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------------


async def test_health_is_ok(client: Client) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_health_never_touches_the_database(unreachable_db_client: Client) -> None:
    async with asyncio.timeout(10):
        response = await unreachable_db_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_the_database_answers(client: Client) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"


async def test_not_ready_when_the_database_is_down(unreachable_db_client: Client) -> None:
    async with asyncio.timeout(10):
        response = await unreachable_db_client.get("/health/ready", headers={"X-Request-ID": "probe-1"})
    body = assert_error(response, 503)
    assert body["request_id"] == "probe-1"
    assert body["checks"]["database"] != "ok"
    for leaked in ("Connect", "refused", "Errno", "127.0.0.1", "asyncpg", "Traceback", "postgres"):
        assert leaked not in response.text


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def test_readiness_recovers_when_the_database_comes_back(database_url: str) -> None:
    """The database behind a port that is closed at first, then forwards to the real server."""
    target = urlsplit(database_url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(target.hostname, target.port)
        await asyncio.gather(forward(client_reader, server_writer), forward(server_reader, client_writer))

    app = create_app(make_settings(database_url.replace(f":{target.port}/", f":{port}/")))
    async with AsyncTestClient(app=app) as test_client:
        down = await test_client.get("/health/ready")
        assert down.status_code == 503
        assert down.json()["checks"]["database"] != "ok"
        relay_server = test_client.blocking_portal.call(asyncio.start_server, relay, "127.0.0.1", port)
        try:
            up = await test_client.get("/health/ready")
        finally:
            test_client.blocking_portal.call(relay_server.close)
    assert up.status_code == 200, up.text
    assert up.json()["checks"] == {"database": "ok"}


async def test_ready_reports_redis_when_it_is_configured(database_url: str) -> None:
    app = create_app(make_settings(database_url, redis_url=REDIS_URL))
    async with AsyncTestClient(app=app) as test_client:
        response = await test_client.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_not_ready_when_redis_is_down(database_url: str) -> None:
    app = create_app(make_settings(database_url, redis_url="redis://127.0.0.1:1/0"))
    async with AsyncTestClient(app=app) as test_client, asyncio.timeout(10):
        response = await test_client.get("/health/ready")
        body = assert_error(response, 503)
        assert body["checks"] == {"database": "ok", "redis": "unavailable"}
        # The API itself still answers: the limiter lets requests through while Redis is away.
        assert (await test_client.get("/health")).status_code == 200


async def test_not_ready_when_the_database_accepts_but_never_answers() -> None:
    """A hung database (accepting TCP, never speaking) must not hang the probe."""
    connections: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        app = create_app(make_settings(f"postgresql://postgres@127.0.0.1:{port}/x"))
        async with AsyncTestClient(app=app) as test_client, asyncio.timeout(10):
            response = await test_client.get("/health/ready")
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
    body = assert_error(response, 503)
    assert body["checks"]["database"] != "ok"


# --------------------------------------------------------------------------------------------------
# OpenAPI
# --------------------------------------------------------------------------------------------------


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
            assert effective == [], (method, path, effective)
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


# --------------------------------------------------------------------------------------------------
# Docs pages
# --------------------------------------------------------------------------------------------------


def csp_sources(policy: str, directive: str) -> list[str]:
    directives = {}
    for part in policy.split(";"):
        name, *values = part.split()
        directives[name.lower()] = values
    return directives.get(directive, directives.get("default-src", []))


def allowed_by(url: str, sources: list[str]) -> bool:
    parts = urlsplit(url)
    if not parts.scheme:
        return "'self'" in sources
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin in sources or url.startswith(tuple(source for source in sources if "://" in source))


@pytest.mark.parametrize("path", ["/docs", "/docs/redoc"])
async def test_docs_pages_are_public_html(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assert "todo-svc" in response.text


@pytest.mark.parametrize("path", ["/docs", "/docs/redoc"])
async def test_docs_pages_csp_allows_their_own_scripts_and_styles(client: Client, path: str) -> None:
    """A CSP that blocks the page's scripts leaves the docs blank."""
    response = await client.get(path)
    policy = response.headers["content-security-policy"]
    scripts = re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)", response.text)
    styles = re.findall(r"<link[^>]*rel=[\"']stylesheet[\"'][^>]*href=[\"']([^\"']+)", response.text)
    styles += re.findall(r"<link[^>]*href=[\"']([^\"']+)[\"'][^>]*rel=[\"']stylesheet", response.text)
    assert scripts, "the docs page loads no script?"
    for url in scripts:
        assert allowed_by(url, csp_sources(policy, "script-src")), (url, policy)
    for url in styles:
        assert allowed_by(url, csp_sources(policy, "style-src")), (url, policy)
    if "<script>" in response.text or "<script type=" in response.text:
        assert "'unsafe-inline'" in csp_sources(policy, "script-src")
