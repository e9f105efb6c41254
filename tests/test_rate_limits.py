"""Rate limits through HTTP, with the in-process counters: 429s, their headers, families, recovery."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from conftest import empty_tables, make_settings
from helpers import assert_error
from litestar import Litestar
from litestar.testing import AsyncTestClient
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_svc.app import create_app

GATEWAY = "10.0.0.2"
LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
PASSWORD = "correct horse battery"


class Peer:
    """The app as reached from one network address (the test client's peer is not an IP)."""

    def __init__(self, app: Litestar, address: str) -> None:
        self.app = app
        self._address = address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["client"] = (self._address, 51000)
        await self.app(scope, receive, send)


ClientFactory = Callable[..., Any]


@pytest.fixture
async def limited(database_url: str, engine: AsyncEngine) -> AsyncIterator[ClientFactory]:
    """Start an app with the given limits (and peer address); its test client comes back."""
    clients: list[AsyncTestClient[Any]] = []

    async def start(peer: str | None = None, **limits: str) -> AsyncTestClient[Any]:
        app = create_app(make_settings(database_url, **limits))
        test_client = AsyncTestClient(app=Peer(app, peer) if peer else app)
        await test_client.__aenter__()
        clients.append(test_client)
        return test_client

    yield start
    for test_client in clients:
        await test_client.__aexit__(None, None, None)
    await empty_tables(engine)


def login_body(email: str = "ann@example.org", password: str = PASSWORD) -> dict[str, str]:
    return {"email": email, "password": password}


async def register(client: AsyncTestClient[Any], email: str | None = None) -> dict[str, Any]:
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.org"
    response = await client.post(REGISTER, json=login_body(email))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(account: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['access_token']}"}


def assert_too_many(response: httpx.Response, limit: int) -> None:
    assert_error(response, 429)
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(response.headers["ratelimit-reset"]) <= 60


async def test_auth_routes_answer_429_after_the_limit_with_the_headers(limited: ClientFactory) -> None:
    client = await limited(rate_limit_auth="3/minute")
    answers = [await client.post(LOGIN, json=login_body()) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
    assert all(a.headers["ratelimit-limit"] == "3" for a in answers)

    assert_too_many(await client.post(LOGIN, json=login_body()), limit=3)
    # Every auth route is in the family, the legacy ones included.
    assert_too_many(await client.post(REGISTER, json=login_body("new@example.org")), limit=3)
    assert_too_many(await client.post("/auth/register", json=login_body("new@example.org")), limit=3)
    assert_too_many(await client.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 43}), limit=3)


async def test_a_limited_request_does_no_work(limited: ClientFactory, bcrypt_checks: list[bytes]) -> None:
    client = await limited(rate_limit_auth="1/minute")
    assert (await client.post(REGISTER, json=login_body("first@example.org"))).status_code == 201
    assert_too_many(await client.post(REGISTER, json=login_body("second@example.org")), limit=1)
    assert_too_many(await client.post(LOGIN, json=login_body("first@example.org")), limit=1)
    assert bcrypt_checks == []  # no password was checked
    # …and nothing was stored: the account can still be created once the family allows it.
    other = await limited()
    assert (await other.post(REGISTER, json=login_body("second@example.org"))).status_code == 201


async def test_route_families_never_share_a_counter(limited: ClientFactory) -> None:
    client = await limited(rate_limit_auth="1/minute", rate_limit_tasks="2/minute")
    ann = await register(client)
    assert_too_many(await client.post(LOGIN, json=login_body(ann["user"]["email"])), limit=1)

    tasks_url = f"/api/v1/users/{ann['user']['id']}/tasks"
    first = await client.get(tasks_url, headers=bearer(ann))
    assert first.status_code == 200
    assert first.headers["ratelimit-limit"] == "2"
    assert first.headers["ratelimit-remaining"] == "1"
    assert (await client.get("/api/v1/users/me", headers=bearer(ann))).status_code == 200
    assert_too_many(await client.get(tasks_url, headers=bearer(ann)), limit=2)


async def test_task_routes_count_per_user(limited: ClientFactory) -> None:
    client = await limited(rate_limit_tasks="3/minute")
    ann, bob = await register(client), await register(client)
    ann_url = f"/api/v1/users/{ann['user']['id']}/tasks"
    for title in ("one", "two", "three"):
        assert (await client.post(ann_url, json={"title": title}, headers=bearer(ann))).status_code == 201
    assert_too_many(await client.post(ann_url, json={"title": "four"}, headers=bearer(ann)), limit=3)
    assert_too_many(await client.get(f"/api/{ann['user']['id']}/tasks", headers=bearer(ann)), limit=3)

    # Bob, from the same address, has his own allowance; Ann's refused write stored nothing.
    bob_url = f"/api/v1/users/{bob['user']['id']}/tasks"
    assert (await client.get(bob_url, headers=bearer(bob))).status_code == 200
    fresh = await limited()
    listed = await fresh.get(ann_url, headers=bearer(ann))
    assert sorted(task["title"] for task in listed.json()["items"]) == ["one", "three", "two"]


async def test_unauthenticated_requests_are_refused_before_counting(limited: ClientFactory) -> None:
    client = await limited(rate_limit_tasks="1/minute")
    ann = await register(client)
    url = f"/api/v1/users/{ann['user']['id']}/tasks"
    for _ in range(3):
        response = await client.get(url, headers={"Authorization": "Bearer not-a-token"})
        assert response.status_code == 401
        assert "ratelimit-limit" not in response.headers
    assert (await client.get(url, headers=bearer(ann))).status_code == 200


async def test_login_is_limited_per_email_whatever_the_address(limited: ClientFactory) -> None:
    """A password-guessing run spread over many addresses still meets the per-account limit."""
    client = await limited(peer=GATEWAY, trusted_proxies=GATEWAY, rate_limit_login="3/minute")

    async def attempt(email: str, address: str) -> httpx.Response:
        return await client.post(
            LOGIN, json=login_body(email, "not the password"), headers={"X-Forwarded-For": address}
        )

    spellings = ["victim@example.org", " Victim@Example.org", "VICTIM@EXAMPLE.ORG "]
    for number, email in enumerate(spellings):
        assert (await attempt(email, f"198.51.100.{number}")).status_code == 401
    assert_too_many(await attempt("victim@example.org", "198.51.100.77"), limit=3)
    assert (await attempt("someone-else@example.org", "198.51.100.78")).status_code == 401


async def post_in_pieces(client: AsyncTestClient[Any], pieces: list[bytes]) -> httpx.Response:
    """A login whose body arrives in several messages (the test client would join them into one)."""

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as streaming:
            return await streaming.post(LOGIN, content=body(), headers={"Content-Type": "application/json"})

    return await asyncio.to_thread(client.blocking_portal.call, post)


async def test_headers_report_the_tightest_limit_the_login_met(limited: ClientFactory) -> None:
    per_address = await limited(rate_limit_auth="3/minute", rate_limit_login="10/minute")
    answer = await per_address.post(LOGIN, json=login_body())
    assert (answer.headers["ratelimit-limit"], answer.headers["ratelimit-remaining"]) == ("3", "2")
    per_email = await limited(rate_limit_auth="10/minute", rate_limit_login="3/minute")
    answer = await per_email.post(LOGIN, json=login_body())
    assert (answer.headers["ratelimit-limit"], answer.headers["ratelimit-remaining"]) == ("3", "2")


async def test_login_bodies_the_handler_refuses_are_not_counted_per_email(limited: ClientFactory) -> None:
    client = await limited(rate_limit_login="1/minute", max_request_body_bytes=200)
    ann = b'"email": "ann@example.org", "password": "correct horse battery"'
    refused = [
        (b"{" + ann, "application/json", 400),  # not JSON
        (b'{"password": "correct horse battery"}', "application/json", 400),  # no email
        (b"{" + ann + b', "admin": true}', "application/json", 400),  # an unknown field
        (b"{" + ann + b"}", "text/plain", 415),
        (b"{" + ann + b" " * 200 + b"}", "application/json", 413),
    ]
    for content, content_type, status in refused:
        response = await client.post(LOGIN, content=content, headers={"Content-Type": content_type})
        assert_error(response, status)
        assert response.headers["ratelimit-limit"] == "100000"  # counted per address only

    assert_error(await post_in_pieces(client, [b"{" + ann, b" " * 200, b"}"]), 413)  # no Content-Length
    # Ann's allowance is whole, and a body read in pieces reaches the handler whole.
    first = await post_in_pieces(client, [b"{" + ann[:20], ann[20:], b"}"])
    assert_error(first, 401)
    assert first.headers["ratelimit-limit"] == "1"
    assert_too_many(await client.post(LOGIN, json=login_body()), limit=1)


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(limited: ClientFactory) -> None:
    client = await limited(peer="203.0.113.9", trusted_proxies=GATEWAY, rate_limit_auth="2/minute")
    for number in range(2):
        forged = {"X-Forwarded-For": f"198.51.100.{number}"}
        assert (await client.post(LOGIN, json=login_body(), headers=forged)).status_code == 401
    assert_too_many(await client.post(LOGIN, json=login_body(), headers={"X-Forwarded-For": "1.1.1.1"}), 2)


async def test_clients_behind_a_trusted_gateway_count_apart(limited: ClientFactory) -> None:
    client = await limited(peer=GATEWAY, trusted_proxies=GATEWAY, rate_limit_auth="1/minute")

    async def attempt(forwarded_for: str) -> int:
        response = await client.post(LOGIN, json=login_body(), headers={"X-Forwarded-For": forwarded_for})
        return response.status_code

    assert await attempt("198.51.100.1") == 401
    assert await attempt("198.51.100.1") == 429
    assert await attempt("198.51.100.2") == 401
    # A forged hop in front of the real one changes nothing: the gateway's entry counts.
    assert await attempt("7.7.7.7, 198.51.100.1") == 429


async def test_the_limit_recovers_after_the_window(limited: ClientFactory) -> None:
    client = await limited(rate_limit_auth="2/second")
    assert [(await client.post(LOGIN, json=login_body())).status_code for _ in range(2)] == [401, 401]
    refused = await client.post(LOGIN, json=login_body())
    assert_too_many(refused, limit=2)
    await asyncio.sleep(int(refused.headers["retry-after"]) + 0.05)
    recovered = await client.post(LOGIN, json=login_body())
    assert recovered.status_code == 401
    assert recovered.headers["ratelimit-remaining"] == "1"


async def test_limits_can_be_turned_off(limited: ClientFactory) -> None:
    client = await limited(rate_limit_enabled=False, rate_limit_auth="1/minute", rate_limit_login="1/minute")
    answers = [await client.post(LOGIN, json=login_body()) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert all("ratelimit-limit" not in a.headers for a in answers)


async def test_health_and_docs_are_not_limited(limited: ClientFactory) -> None:
    client = await limited(rate_limit_auth="1/minute", rate_limit_tasks="1/minute")
    for _ in range(3):
        for path in ("/health", "/docs/openapi.json"):
            response = await client.get(path)
            assert response.status_code == 200
            assert "ratelimit-limit" not in response.headers


async def test_simultaneous_requests_cannot_overshoot_the_limit(limited: ClientFactory) -> None:
    client = await limited(rate_limit_tasks="5/minute")
    ann = await register(client)
    url = f"/api/v1/users/{ann['user']['id']}/tasks"
    app: ASGIApp = client.app

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as concurrent:
            answers = await asyncio.gather(*(concurrent.get(url, headers=bearer(ann)) for _ in range(12)))
        return [answer.status_code for answer in answers]

    statuses = await asyncio.to_thread(client.blocking_portal.call, burst)
    assert sorted(statuses) == [200] * 5 + [429] * 7


async def test_options_on_a_per_user_route_counts_per_address(limited: ClientFactory) -> None:
    """OPTIONS passes the auth middleware without a user: it is counted by address, never a 500."""
    client = await limited(rate_limit_tasks="2/minute")
    answers = [await client.options("/api/v1/users/1/tasks") for _ in range(3)]
    assert [a.status_code for a in answers] == [204, 204, 429]
    assert "GET" in answers[0].headers["allow"]
    assert_too_many(answers[2], limit=2)
