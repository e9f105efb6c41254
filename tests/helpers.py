"""What the test modules share: the contract's error body and timestamps (docs/api.md), the
deprecation headers of the legacy routes, and tasks and accounts driven over HTTP."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from sqlalchemy import text

both_backends = pytest.mark.backends("postgresql", "sqlite")

PASSWORD = "correct horse battery"
ONE_MIB = 1024 * 1024

# --- the contract --------------------------------------------------------------------------------

ERROR_FIELDS = frozenset({"error", "detail", "status_code", "timestamp", "request_id"})
OPTIONAL_ERROR_FIELDS = frozenset({"errors", "checks"})  # 400's field errors, 503's checks
LEAKS = ("Traceback", "SELECT", "INSERT", "sqlalchemy", "asyncpg", 'File "')


def utc_timestamp(value: str) -> datetime:
    """A timestamp of the API: ISO 8601 with an explicit offset, and that offset is UTC."""
    assert re.search(r"(Z|[+-]\d\d:\d\d)$", value), f"{value} has no explicit offset"
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), f"{value} is not UTC"
    return parsed


def assert_error(response: httpx.Response, status: int, *, field: str | None = None) -> dict[str, Any]:
    """The contract's error body: JSON with the status and its reason phrase, a detail that leaks no
    trace or SQL, a UTC timestamp and the response's request id; well-formed field errors when there
    are some (`field` must be one of them), `WWW-Authenticate: Bearer` on 401, `Retry-After` on 429."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert ERROR_FIELDS <= body.keys() <= ERROR_FIELDS | OPTIONAL_ERROR_FIELDS, body
    assert body["status_code"] == status
    assert body["error"] == HTTPStatus(status).phrase
    assert isinstance(body["detail"], str), body
    assert body["detail"].strip(), body
    utc_timestamp(body["timestamp"])
    assert body["request_id"] == response.headers["x-request-id"]
    for marker in LEAKS:
        assert marker not in response.text, marker
    if "errors" in body:
        assert isinstance(body["errors"], list), body
        assert body["errors"], body
        for item in body["errors"]:
            assert set(item) == {"field", "message"}, item
            assert isinstance(item["message"], str), item
            assert item["message"], item
    if field is not None:
        assert field in [item["field"] for item in body.get("errors", [])], body
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer"), response.headers
    if status == 429:
        assert int(response.headers["retry-after"]) >= 1, response.headers
    return body


def assert_deprecated(response: httpx.Response, successor: str) -> None:
    """A legacy route's answer: `Deprecation: true` and a `Link` to the canonical route."""
    assert response.headers.get("deprecation") == "true", (response.status_code, dict(response.headers))
    assert response.headers.get("link") == f'<{successor}>; rel="successor-version"', response.headers


def csp_directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header, by directive."""
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        directives[name.lower()] = values
    return directives


def oversized_json(field: str) -> bytes:
    """A JSON object just over the 1 MiB body limit."""
    return b'{"' + field.encode() + b'": "' + b"a" * (ONE_MIB + 16) + b'"}'


# --- tasks ---------------------------------------------------------------------------------------

# The routes that address one task, with a valid body where one is needed.
TASK_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PUT", "", {"title": "Replaced", "description": "new", "completed": True}),
    ("PATCH", "", {"title": "Patched"}),
    ("PATCH", "/complete", None),
    ("DELETE", "", None),
]


async def create_task(
    client: Any, account: Any, headers: Mapping[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """POST a task (title "Buy milk" unless given) as `account`; it must be created."""
    fields.setdefault("title", "Buy milk")
    headers = {**account.headers, **(headers or {})}
    response = await client.post(account.tasks_url, json=fields, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def fetch_task(client: Any, account: Any, task_id: int) -> dict[str, Any]:
    response = await client.get(f"{account.tasks_url}/{task_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def listed_tasks(client: Any, account: Any) -> list[dict[str, Any]]:
    """Every task of the account (up to 100), as the list route answers."""
    response = await client.get(account.tasks_url, params={"limit": 100}, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


# --- accounts ------------------------------------------------------------------------------------


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


def assert_user(user: dict[str, Any], email: str) -> None:
    assert set(user) == {"id", "email", "created_at", "updated_at"}
    assert isinstance(user["id"], int)
    assert user["id"] > 0
    assert user["email"] == email
    assert utc_timestamp(user["created_at"]) <= utc_timestamp(user["updated_at"])


def assert_token_pair(body: dict[str, Any], email: str, expires_in: int = 900) -> None:
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == expires_in
    assert isinstance(body["access_token"], str)
    assert body["access_token"].count(".") == 2
    assert_user(body["user"], email)


async def stored_user(engine: Any, email: str) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT id, email, password_hash FROM users WHERE lower(email) = :email"),
                {"email": email.lower()},
            )
        ).first()
    return dict(row._mapping) if row else None


async def count_rows(engine: Any, sql: str, **params: Any) -> int:
    """The one number a `SELECT count(*) …` answers."""
    async with engine.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())
