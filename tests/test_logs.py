"""Logs as an on-call engineer reads them: one JSON line per request, errors once with their trace,
and never a password, token, Authorization header or email — on error paths least of all."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from conftest import make_settings
from litestar import Litestar
from litestar.testing import AsyncTestClient

from todo_svc.app import create_app
from todo_svc.core.logging import configure_logging
from todo_svc.services.tasks import TaskService

EMAIL, PASSWORD = "ann@example.org", "correct horse battery"
Start = Callable[..., Any]


@pytest.fixture
def logged(database_url: str, capsys: pytest.CaptureFixture[str]) -> Any:
    """An app (and its client) whose logs this test reads from standard output."""

    @asynccontextmanager
    async def start(**overrides: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
        app = create_app(make_settings(database_url, **{"log_format": "json", **overrides}))
        async with AsyncTestClient(app=app) as client:
            yield client

    yield start
    configure_logging("INFO", json_lines=False)  # back to the output pytest gives the other tests


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("logger") == "todo_svc.access"]


async def sign_up(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_one_json_line_per_request_with_its_fields(
    logged: Start, client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    async with logged() as app_client:
        account = await sign_up(app_client)
        user_id = account["user"]["id"]
        headers = {"Authorization": f"Bearer {account['access_token']}", "X-Request-ID": "trace-42"}
        listed = await app_client.get(f"/api/v1/users/{user_id}/tasks", headers=headers)
        missing = await app_client.get("/no/such/route")

    lines = access_lines(json_lines(capsys))
    assert len(lines) == 3
    register_line, list_line, missing_line = lines
    assert register_line["route"] == "/api/v1/auth/register"
    assert register_line["status"] == 201
    assert register_line["user_id"] is None
    assert list_line == {
        **list_line,
        "event": "request",
        "level": "info",
        "method": "GET",
        "route": "/api/v1/users/{user_id}/tasks",
        "status": 200,
        "request_id": "trace-42",
        "user_id": user_id,
    }
    assert listed.headers["x-request-id"] == "trace-42"
    assert list_line["duration_ms"] > 0
    assert list_line["timestamp"].endswith("Z")
    assert missing_line["route"] == "unmatched"
    assert missing_line["status"] == 404
    assert missing_line["request_id"] == missing.headers["x-request-id"]


async def test_no_secret_reaches_the_logs_even_on_error_paths(
    logged: Start, client: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with logged(log_level="debug") as app_client:
        account = await sign_up(app_client)
        token, refresh = account["access_token"], account["refresh_token"]
        await app_client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD + "x"})
        await app_client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD, "extra": 1})
        await app_client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
        await app_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}x"})
        monkeypatch.setattr(TaskService, "list_tasks", explode)
        crashed = await app_client.get(
            f"/api/v1/users/{account['user']['id']}/tasks", headers={"Authorization": f"Bearer {token}"}
        )
        assert crashed.status_code == 500

    output = capsys.readouterr().out
    assert output.count("\n") >= 7
    for secret in (PASSWORD, token, refresh, EMAIL, "Bearer", "authorization", "Authorization"):
        assert secret not in output


async def explode(*_: Any, **__: Any) -> Any:
    raise RuntimeError("the disk caught fire")


async def test_an_unhandled_error_is_logged_once_with_its_trace_and_request_id(
    logged: Start, client: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with logged() as app_client:
        account = await sign_up(app_client)
        monkeypatch.setattr(TaskService, "list_tasks", explode)
        crashed = await app_client.get(
            f"/api/v1/users/{account['user']['id']}/tasks",
            headers={"Authorization": f"Bearer {account['access_token']}"},
        )

    assert crashed.status_code == 500
    assert "fire" not in crashed.text  # the client gets the request id, not the trace
    lines = json_lines(capsys)
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1
    (error,) = errors
    assert error["request_id"] == crashed.headers["x-request-id"] == crashed.json()["request_id"]
    assert error["route"] == "/api/v1/users/{user_id}/tasks"
    assert "Traceback" in error["exception"]
    assert "RuntimeError: the disk caught fire" in error["exception"]
    assert access_lines(lines)[-1]["status"] == 500


async def test_the_log_level_comes_from_the_environment(
    logged: Start, client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    async with logged(log_level="WARNING") as app_client:
        await app_client.get("/health")
    assert access_lines(json_lines(capsys)) == []


async def test_development_output_is_for_people(
    logged: Start, client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    async with logged(log_format="console") as app_client:
        await app_client.get("/health")
    output = capsys.readouterr().out
    (line,) = [line for line in output.splitlines() if "request" in line]
    assert not line.startswith("{")
    assert "route=/health" in line
    assert "status=200" in line


async def test_a_failing_readiness_check_is_logged_once_with_its_name_and_error_class(
    logged: Start, client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A probe every second must not flood the log, nor leave an operator guessing why it is 503."""
    async with logged(redis_url="redis://:redis-password@127.0.0.1:1/0") as app_client:
        statuses = [(await app_client.get("/health/ready")).status_code for _ in range(5)]
    assert statuses == [503] * 5
    output = capsys.readouterr().out
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    failures = [line for line in lines if line.get("logger") == "todo_svc.readiness"]
    assert len(failures) == 1
    assert failures[0]["level"] == "warning"
    assert "redis unavailable" in failures[0]["event"]
    assert "ConnectionError" in failures[0]["event"]
    assert "redis-password" not in output
