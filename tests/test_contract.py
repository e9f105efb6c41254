"""The cross-cutting HTTP contract of API.md: error bodies, request ids, hardening headers, deprecation."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from conftest import make_settings
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_svc.app import create_app
from todo_svc.services.tasks import TaskService

ONE_MIB = 1024 * 1024
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SECRET_MARKERS = ("Traceback", "SELECT", "INSERT", "sqlalchemy", "asyncpg", 'File "')

Client = AsyncTestClient[Litestar]


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The contract's error body, with the status, reason phrase, UTC timestamp and request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert {"error", "detail", "status_code", "timestamp", "request_id"} <= body.keys(), body
    assert body["status_code"] == status
    assert body["error"] == HTTPStatus(status).phrase
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()
    assert re.search(r"(Z|[+-]\d\d:\d\d)$", body["timestamp"]), body["timestamp"]
    stamp = datetime.fromisoformat(body["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert body["request_id"] == response.headers["x-request-id"]
    for marker in SECRET_MARKERS:
        assert marker not in response.text
    return body


def oversized_json(field: str) -> bytes:
    return b'{"' + field.encode() + b'": "' + b"a" * (ONE_MIB + 16) + b'"}'


# --------------------------------------------------------------------------------------------------
# Error bodies, one per layer
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/no/such/route", "/api/v1/nope", "/api/v1/users/abc/tasks", "/api/v1/users/1/tasks/x1"]
)
async def test_unknown_route_is_404_in_error_format(client: Client, path: str) -> None:
    assert_error(await client.get(path), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed", "forbidden"),
    [
        ("PUT", "/api/v1/users/me", {"GET", "DELETE"}, "PUT"),
        ("GET", "/api/v1/auth/register", {"POST"}, "GET"),
        ("POST", "/health", {"GET"}, "POST"),
    ],
)
async def test_method_not_allowed_is_405_with_allow(
    client: Client, method: str, path: str, allowed: set[str], forbidden: str
) -> None:
    response = await client.request(method, path)
    assert_error(response, 405)
    allow = {item.strip() for item in response.headers["allow"].split(",")}
    assert allowed <= allow
    assert forbidden not in allow


@pytest.fixture
async def unlimited_client(postgresql_url: str) -> AsyncIterator[Client]:
    """The app without rate limits, for answers that are about routing only."""
    async with AsyncTestClient(app=create_app(make_settings(postgresql_url, rate_limit_enabled=False))) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/v1/users/me", "DELETE, GET, OPTIONS"),
        ("/api/v1/users/2/tasks", "GET, OPTIONS, POST"),
        ("/api/v1/users/2/tasks/3", "DELETE, GET, OPTIONS, PATCH, PUT"),
        ("/api/2/tasks/3/complete", "OPTIONS, PATCH"),
        ("/health", "GET, OPTIONS"),
    ],
)
async def test_options_lists_every_method(unlimited_client: Client, path: str, allow: str) -> None:
    """Without a token, also on other users' paths; Litestar 2 alone would list one handler's methods."""
    response = await unlimited_client.options(path)
    assert response.status_code == 204, response.text
    assert response.headers["allow"] == allow


async def test_missing_token_is_401_with_bearer_challenge(client: Client) -> None:
    response = await client.get("/api/v1/users/me")
    assert_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-jwt", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "Basic dXNlcjpwYXNz", "Bearer"],
)
async def test_bad_token_is_401_without_echoing_it(client: Client, authorization: str) -> None:
    response = await client.get("/api/v1/users/me", headers={"Authorization": authorization})
    body = assert_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    credential = authorization.partition(" ")[2]
    if credential:
        assert credential not in response.text
        assert credential not in body["detail"]


async def test_wrong_password_is_401_without_echoing_it(client: Client, ann: Any) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": ann.email, "password": "wrong-but-secret-pw"}
    )
    assert_error(response, 401)
    assert "wrong-but-secret-pw" not in response.text


async def test_other_users_tasks_are_403(client: Client, ann: Any, bob: Any) -> None:
    assert_error(await client.get(bob.tasks_url, headers=ann.headers), 403)
    assert_error(await client.post(bob.tasks_url, json={"title": "x"}, headers=ann.headers), 403)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": 5}, "title"),
        ({}, "title"),
        ({"title": "ok", "completed": "true"}, "completed"),
        ({"title": "ok", "colour": "red"}, "colour"),
        ({"title": "   "}, "title"),
    ],
)
async def test_invalid_body_is_400_with_field_errors(
    client: Client, ann: Any, payload: dict[str, Any], field: str
) -> None:
    body = assert_error(await client.post(ann.tasks_url, json=payload, headers=ann.headers), 400)
    assert isinstance(body["errors"], list)
    assert body["errors"], body
    for item in body["errors"]:
        assert set(item) == {"field", "message"}
        assert isinstance(item["message"], str)
        assert item["message"]
    assert field in {item["field"] for item in body["errors"]}


async def test_malformed_json_is_400_with_field_errors(client: Client, ann: Any) -> None:
    response = await client.post(
        ann.tasks_url,
        content=b'{"title": ',
        headers={**ann.headers, "Content-Type": "application/json"},
    )
    body = assert_error(response, 400)
    assert body["errors"]
    assert all(set(item) == {"field", "message"} for item in body["errors"])


async def test_invalid_query_is_400_naming_the_parameter(client: Client, ann: Any) -> None:
    body = assert_error(await client.get(ann.tasks_url, params={"limit": 0}, headers=ann.headers), 400)
    assert "limit" in {item["field"] for item in body["errors"]}


async def test_short_password_is_400_without_echoing_it(client: Client) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": "p@example.org", "password": "hunter2"}
    )
    body = assert_error(response, 400)
    assert "password" in {item["field"] for item in body["errors"]}
    assert "hunter2" not in response.text


async def test_missing_task_is_404_in_error_format(client: Client, ann: Any) -> None:
    body = assert_error(await client.get(f"{ann.tasks_url}/424242", headers=ann.headers), 404)
    assert body["detail"] == "Task 424242 not found"


async def test_duplicate_email_is_409_in_error_format(client: Client, ann: Any) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": ann.email.upper(), "password": "another password"}
    )
    assert_error(response, 409)
    assert "another password" not in response.text


async def test_body_over_one_mib_to_register_is_413(client: Client) -> None:
    response = await client.post(
        "/api/v1/auth/register", content=oversized_json("email"), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413)


async def test_body_over_one_mib_to_task_create_is_413_and_stores_nothing(client: Client, ann: Any) -> None:
    response = await client.post(
        ann.tasks_url,
        content=oversized_json("title"),
        headers={**ann.headers, "Content-Type": "application/json"},
    )
    assert_error(response, 413)
    listed = await client.get(ann.tasks_url, headers=ann.headers)
    assert listed.json()["total"] == 0


async def test_body_just_under_the_limit_is_not_413(client: Client, ann: Any) -> None:
    """The limit is 1 MiB, not less: a big but allowed body reaches validation (too-long title → 400)."""
    body = b'{"title": "' + b"a" * (ONE_MIB - 100) + b'"}'
    response = await client.post(
        ann.tasks_url, content=body, headers={**ann.headers, "Content-Type": "application/json"}
    )
    assert_error(response, 400)


async def raw_asgi_post(app: Litestar, path: str, chunks: list[bytes]) -> tuple[int, dict[str, str], bytes]:
    """POST a body in chunks without Content-Length (as a chunked upload arrives), straight to the app."""
    pending = list(chunks)
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
        "extensions": {},
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    start = next(message for message in messages if message["type"] == "http.response.start")
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    body = b"".join(
        message.get("body", b"") for message in messages if message["type"] == "http.response.body"
    )
    return start["status"], headers, body


async def test_chunked_body_over_one_mib_without_content_length_is_413(client: Client, app: Litestar) -> None:
    chunks = [b'{"email": "', *([b"a" * 65536] * 17), b'", "password": "long enough"}']
    status, headers, body = await raw_asgi_post(app, "/api/v1/auth/register", chunks)
    assert status == 413, body
    assert b'"status_code":413' in body.replace(b" ", b"")
    assert "x-request-id" in headers


async def test_unexpected_exception_is_500_without_details(
    client: Client, ann: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client gets the request id to quote; the trace goes to the log (tests/test_logs.py)."""
    boom = RuntimeError("boom secret SELECT * FROM users")

    async def explode(*_: object, **__: object) -> None:
        raise boom

    monkeypatch.setattr(TaskService, "get_task", explode)
    response = await client.get(f"{ann.tasks_url}/1", headers={**ann.headers, "X-Request-ID": "trace-500-a"})

    body = assert_error(response, 500)
    assert body["request_id"] == "trace-500-a"
    for leaked in ("boom", "secret", "SELECT", "users", "RuntimeError", "Traceback"):
        assert leaked not in response.text


# --------------------------------------------------------------------------------------------------
# X-Request-ID
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["abc-123", "req.2026:11_27-x", "a" * 128, "7"])
async def test_sane_request_id_is_echoed(client: Client, sent: str) -> None:
    assert (await client.get("/health", headers={"X-Request-ID": sent})).headers["x-request-id"] == sent
    response = await client.get("/no/such/route", headers={"X-Request-ID": sent})
    assert response.headers["x-request-id"] == sent
    assert assert_error(response, 404)["request_id"] == sent


@pytest.mark.parametrize(
    "sent",
    [
        "a" * 129,
        "x" * 5000,
        "has space",
        'quo"te',
        "it's",
        "<script>alert(1)</script>",
        "a,b",
        "semi;colon",
        "",
        b"caf\xc3\xa9",
        b"nul\x01byte",
    ],
)
async def test_insane_request_id_is_replaced(client: Client, sent: str | bytes) -> None:
    raw = sent.encode() if isinstance(sent, str) else sent
    response = await client.get("/no/such/route", headers=[(b"X-Request-ID", raw)])
    chosen = response.headers["x-request-id"]
    assert chosen.encode() != raw
    assert SANE_ID.fullmatch(chosen)
    assert assert_error(response, 404)["request_id"] == chosen


async def test_generated_request_ids_differ_per_request(client: Client) -> None:
    ids = {(await client.get("/health")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(SANE_ID.fullmatch(value) for value in ids)


RequestFn = Callable[[Client, Any], Awaitable[httpx.Response]]


def _register_new(c: Client, _: Any) -> Awaitable[httpx.Response]:
    return c.post("/api/v1/auth/register", json={"email": "new@example.org", "password": "long enough pw"})


# Responses from every layer: routing, auth, guards, validation, handlers, ops, docs, legacy routes.
RESPONSES: dict[str, RequestFn] = {
    "register 201": _register_new,
    "register 409": lambda c, a: c.post(
        "/api/v1/auth/register", json={"email": a.email, "password": "x" * 10}
    ),
    "register 400": lambda c, a: c.post("/api/v1/auth/register", json={"email": "nope"}),
    "login 200": lambda c, a: c.post("/api/v1/auth/login", json={"email": a.email, "password": a.password}),
    "login 401": lambda c, a: c.post("/api/v1/auth/login", json={"email": a.email, "password": "wrong pass"}),
    "me 200": lambda c, a: c.get("/api/v1/users/me", headers=a.headers),
    "me 401": lambda c, a: c.get("/api/v1/users/me"),
    "tasks list 200": lambda c, a: c.get(a.tasks_url, headers=a.headers),
    "tasks create 201": lambda c, a: c.post(a.tasks_url, json={"title": "t"}, headers=a.headers),
    "tasks create 400": lambda c, a: c.post(a.tasks_url, json={"title": 1}, headers=a.headers),
    "tasks 401": lambda c, a: c.get(a.tasks_url),
    "tasks 403": lambda c, a: c.get(f"/api/v1/users/{a.id + 1000}/tasks", headers=a.headers),
    "task 404": lambda c, a: c.get(f"{a.tasks_url}/999999", headers=a.headers),
    "task 413": lambda c, a: c.post(
        a.tasks_url,
        content=oversized_json("title"),
        headers={**a.headers, "Content-Type": "application/json"},
    ),
    "legacy login 200": lambda c, a: c.post("/auth/login", json={"email": a.email, "password": a.password}),
    "legacy tasks 200": lambda c, a: c.get(f"/api/{a.id}/tasks", headers=a.headers),
    "legacy task 404": lambda c, a: c.get(f"/api/{a.id}/tasks/999999", headers=a.headers),
    "unknown 404": lambda c, a: c.get("/no/such/route"),
    "bad id 404": lambda c, a: c.get("/api/v1/users/abc/tasks", headers=a.headers),
    "405": lambda c, a: c.put("/api/v1/users/me", headers=a.headers),
    "health 200": lambda c, a: c.get("/health"),
    "ready 200": lambda c, a: c.get("/health/ready"),
    "openapi 200": lambda c, a: c.get("/docs/openapi.json"),
    "docs 200": lambda c, a: c.get("/docs"),
}
AUTH_AND_TASK_RESPONSES = [
    name for name in RESPONSES if name.split()[0] in {"register", "login", "me", "tasks", "task", "legacy"}
]
JSON_API_RESPONSES = [name for name in RESPONSES if name not in {"openapi 200", "docs 200"}]


@pytest.mark.parametrize("case", list(RESPONSES))
async def test_every_response_has_request_id_and_security_headers(
    client: Client, ann: Any, case: str
) -> None:
    response = await RESPONSES[case](client, ann)
    assert SANE_ID.fullmatch(response.headers.get("x-request-id", "")), response.headers
    if response.status_code >= 400:
        assert response.json()["request_id"] == response.headers["x-request-id"]
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("x-frame-options") == "DENY"
    assert response.headers.get("referrer-policy") == "no-referrer"
    assert response.headers.get("content-security-policy")


def csp_directives(policy: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        directives[name.lower()] = values
    return directives


@pytest.mark.parametrize("case", JSON_API_RESPONSES)
async def test_api_responses_have_a_strict_csp(client: Client, ann: Any, case: str) -> None:
    response = await RESPONSES[case](client, ann)
    directives = csp_directives(response.headers["content-security-policy"])
    assert directives["default-src"] == ["'none'"]
    allowed = {value for values in directives.values() for value in values}
    assert not allowed & {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "blob:"}, directives


@pytest.mark.parametrize("case", AUTH_AND_TASK_RESPONSES)
async def test_auth_and_task_responses_are_not_stored(client: Client, ann: Any, case: str) -> None:
    response = await RESPONSES[case](client, ann)
    assert "no-store" in response.headers.get("cache-control", ""), (response.status_code, response.headers)


# --------------------------------------------------------------------------------------------------
# A COMMIT that fails never answers 2xx
# --------------------------------------------------------------------------------------------------

REFUSED_TITLE = "refuse-at-commit-7f3a"
REFUSED_EMAIL = "refuse-at-commit-7f3a@example.org"


async def install_commit_trap(engine: AsyncEngine, table: str, column: str, magic: str) -> None:
    """A deferred constraint trigger: the INSERT succeeds, its COMMIT fails."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                f"""
                CREATE OR REPLACE FUNCTION test_refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.{column} = '{magic}' THEN
                        RAISE EXCEPTION 'refused at commit: SELECT secret FROM vault';
                    END IF;
                    RETURN NULL;
                END $$
                """  # noqa: S608 - constants of this module
            )
        )
        await connection.execute(
            text(
                f"CREATE CONSTRAINT TRIGGER test_refuse_{table} AFTER INSERT ON {table} "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_{table}()"
            )
        )


async def remove_commit_trap(engine: AsyncEngine, table: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(f"DROP TRIGGER IF EXISTS test_refuse_{table} ON {table}"))
        await connection.execute(text(f"DROP FUNCTION IF EXISTS test_refuse_{table}()"))


async def test_task_create_whose_commit_fails_is_not_2xx(
    client: Client, ann: Any, engine: AsyncEngine
) -> None:
    assert engine.dialect.name == "postgresql"
    await install_commit_trap(engine, "tasks", "title", REFUSED_TITLE)
    try:
        response = await client.post(ann.tasks_url, json={"title": REFUSED_TITLE}, headers=ann.headers)
    finally:
        await remove_commit_trap(engine, "tasks")

    assert not response.is_success, response.text
    assert_error(response, 500)
    assert "refused" not in response.text
    assert "vault" not in response.text
    listed = await client.get(ann.tasks_url, headers=ann.headers)
    assert listed.status_code == 200
    assert listed.json()["total"] == 0
    # the pool is healthy afterwards: the next write is stored
    assert (await client.post(ann.tasks_url, json={"title": "fine"}, headers=ann.headers)).status_code == 201


async def test_register_whose_commit_fails_is_not_2xx(client: Client, engine: AsyncEngine) -> None:
    assert engine.dialect.name == "postgresql"
    credentials = {"email": REFUSED_EMAIL, "password": "long enough pw"}
    await install_commit_trap(engine, "users", "email", REFUSED_EMAIL)
    try:
        response = await client.post("/api/v1/auth/register", json=credentials)
    finally:
        await remove_commit_trap(engine, "users")

    assert not response.is_success, response.text
    assert_error(response, 500)
    assert "access_token" not in response.text
    assert "vault" not in response.text
    assert_error(await client.post("/api/v1/auth/login", json=credentials), 401)


# --------------------------------------------------------------------------------------------------
# Legacy routes
# --------------------------------------------------------------------------------------------------


def assert_deprecated(response: httpx.Response, successor: str) -> None:
    assert response.headers.get("deprecation") == "true", response.headers
    assert response.headers.get("link") == f'<{successor}>; rel="successor-version"'


async def test_legacy_auth_routes_point_to_their_successor(client: Client) -> None:
    credentials = {"email": "legacy@example.org", "password": "long enough pw"}
    registered = await client.post("/auth/register", json=credentials)
    assert registered.status_code == 201, registered.text
    assert_deprecated(registered, "/api/v1/auth/register")
    logged_in = await client.post("/auth/login", json=credentials)
    assert logged_in.status_code == 200, logged_in.text
    assert_deprecated(logged_in, "/api/v1/auth/login")


async def test_legacy_task_routes_point_to_their_successor(client: Client, ann: Any) -> None:
    legacy = f"/api/{ann.id}/tasks"
    created = await client.post(legacy, json={"title": "old client"}, headers=ann.headers)
    assert created.status_code == 201, created.text
    assert_deprecated(created, ann.tasks_url)
    task_id = created.json()["id"]

    listed = await client.get(legacy, headers=ann.headers)
    assert listed.json()["total"] == 1
    assert_deprecated(listed, ann.tasks_url)
    assert_deprecated(
        await client.get(f"{legacy}/{task_id}", headers=ann.headers), f"{ann.tasks_url}/{task_id}"
    )
    completed = await client.patch(f"{legacy}/{task_id}/complete", headers=ann.headers)
    assert completed.json()["completed"] is True
    assert_deprecated(completed, f"{ann.tasks_url}/{task_id}/complete")
    missing = await client.get(f"{legacy}/999999", headers=ann.headers)
    assert_error(missing, 404)
    assert_deprecated(missing, f"{ann.tasks_url}/999999")


async def test_legacy_answers_before_the_handler_are_deprecated_too(client: Client, ann: Any) -> None:
    unauthenticated = await client.get(f"/api/{ann.id}/tasks")
    assert_error(unauthenticated, 401)
    assert_deprecated(unauthenticated, ann.tasks_url)
    invalid = await client.post("/auth/login", json={"email": ann.email})
    assert_error(invalid, 400)
    assert_deprecated(invalid, "/api/v1/auth/login")


async def test_canonical_routes_are_not_deprecated(client: Client, ann: Any) -> None:
    for response in (
        await client.get(ann.tasks_url, headers=ann.headers),
        await client.post("/api/v1/auth/login", json={"email": ann.email, "password": ann.password}),
        await client.get("/health"),
    ):
        assert "deprecation" not in response.headers
        assert "link" not in response.headers
