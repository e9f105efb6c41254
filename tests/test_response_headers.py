"""Headers on every response: the X-Request-ID (echoed when sane, generated otherwise), the hardening
headers and a strict CSP, and no-store on auth and task answers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from helpers import assert_error, csp_directives, oversized_json
from litestar import Litestar
from litestar.testing import AsyncTestClient

SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

Client = AsyncTestClient[Litestar]


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
