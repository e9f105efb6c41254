"""Optional `iss`/`aud` claims: issued when configured, and then required."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from conftest import empty_tables, make_settings
from litestar import Litestar
from litestar.testing import AsyncTestClient

from todo_svc.app import create_app

ISSUER, AUDIENCE = "https://auth.example.org", "todo-api"


@pytest.fixture
async def strict_client(postgresql_url: str, engine: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(make_settings(postgresql_url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE))
    try:
        async with AsyncTestClient(app=app) as client:
            yield client
    finally:
        await empty_tables(engine)


async def test_configured_issuer_and_audience_are_issued_and_checked(
    strict_client: AsyncTestClient[Litestar],
) -> None:
    registered = await strict_client.post(
        "/api/v1/auth/register", json={"email": "iss@example.org", "password": "correct horse"}
    )
    assert registered.status_code == 201, registered.text
    body = registered.json()
    token = body["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    me = await strict_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200

    secret = strict_client.app.state.settings.jwt_secret_key
    now = int(time.time())
    base = {"sub": str(body["user"]["id"]), "email": "iss@example.org", "iat": now, "exp": now + 60}
    for changes in ({"iss": "https://evil.example"}, {"aud": "another-api"}, {"iss": None}, {"aud": None}):
        claims = {**base, "iss": ISSUER, "aud": AUDIENCE, "jti": uuid.uuid4().hex, **changes}
        forged = jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")
        response = await strict_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, changes


@pytest.fixture
async def cors_client(postgresql_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(make_settings(postgresql_url, cors_allow_origins="https://app.example.org"))
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_cors_answers_only_the_configured_origins(
    cors_client: AsyncTestClient[Litestar], client: AsyncTestClient[Litestar]
) -> None:
    preflight = await cors_client.options(
        "/api/v1/auth/login",
        headers={"Origin": "https://app.example.org", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.org"

    allowed = await cors_client.get("/health", headers={"Origin": "https://app.example.org"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.org"
    foreign = await cors_client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers

    off_by_default = await client.get("/health", headers={"Origin": "https://app.example.org"})
    assert "access-control-allow-origin" not in off_by_default.headers
