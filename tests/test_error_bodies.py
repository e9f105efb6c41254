"""The contract's error body (docs/api.md "Errors") from every layer: routing, methods (and the Allow
that OPTIONS answers), authentication, ownership, validation, missing rows, conflicts and a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import make_settings
from helpers import assert_error
from litestar import Litestar
from litestar.testing import AsyncTestClient

from todo_svc.app import create_app
from todo_svc.services.tasks import TaskService

Client = AsyncTestClient[Litestar]


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
