"""Refresh tokens: rotation, theft detection, logout."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import httpx
import jwt
import pytest
from conftest import Account, concurrently
from helpers import assert_error
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

Client = AsyncTestClient[Litestar]
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"


async def login(client: Client, account: Account) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def refresh(client: Client, token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": token})


@pytest.mark.backends("postgresql", "sqlite")
async def test_a_refresh_rotates_the_pair(client: Client, ann: Account) -> None:
    first = await login(client, ann)
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["user"]["id"] == ann.id
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert me.status_code == 200
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.backends("postgresql", "sqlite")
async def test_a_used_token_that_comes_back_revokes_its_whole_family(client: Client, ann: Account) -> None:
    stolen = (await login(client, ann))["refresh_token"]
    rotated = (await refresh(client, stolen)).json()["refresh_token"]

    replay = await refresh(client, stolen)
    assert_error(replay, 401)  # with its Bearer challenge
    # The revocation was committed although that request failed: the sibling is dead too.
    assert (await refresh(client, rotated)).status_code == 401


async def test_other_families_survive_a_revocation(client: Client, ann: Account) -> None:
    laptop = (await login(client, ann))["refresh_token"]
    phone = (await login(client, ann))["refresh_token"]
    await refresh(client, laptop)
    await refresh(client, laptop)  # reuse: the laptop's family is revoked
    assert (await refresh(client, phone)).status_code == 200


async def test_simultaneous_refreshes_with_one_token_let_exactly_one_through(
    client: Client, ann: Account
) -> None:
    token = (await login(client, ann))["refresh_token"]

    async def race(concurrent: httpx.AsyncClient) -> list[httpx.Response]:
        return await asyncio.gather(
            *(concurrent.post(REFRESH, json={"refresh_token": token}) for _ in range(6))
        )

    statuses = sorted(response.status_code for response in await concurrently(client, race))
    assert statuses == [200] + [401] * 5


async def test_logout_revokes_the_family_of_the_token(client: Client, ann: Account) -> None:
    pair = await login(client, ann)
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (
        await client.post(LOGOUT, json={"refresh_token": pair["refresh_token"]}, headers=headers)
    ).status_code == 204
    assert (await refresh(client, pair["refresh_token"])).status_code == 401


async def test_logout_needs_a_bearer_and_touches_only_the_callers_tokens(
    client: Client, ann: Account, bob: Account
) -> None:
    anns = (await login(client, ann))["refresh_token"]
    assert (await client.post(LOGOUT, json={"refresh_token": anns})).status_code == 401
    assert (await client.post(LOGOUT, json={"refresh_token": anns}, headers=bob.headers)).status_code == 204
    assert (await refresh(client, anns)).status_code == 200


@pytest.mark.backends("postgresql", "sqlite")
async def test_logout_with_the_access_token_alone_ends_its_session(client: Client, ann: Account) -> None:
    laptop, phone = await login(client, ann), await login(client, ann)
    headers = {"Authorization": f"Bearer {laptop['access_token']}"}
    response = await client.post(LOGOUT, headers=headers)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert (await refresh(client, laptop["refresh_token"])).status_code == 401
    assert (await refresh(client, phone["refresh_token"])).status_code == 200  # another session


async def test_a_refreshed_access_token_still_names_its_session(client: Client, ann: Account) -> None:
    first = await login(client, ann)
    second = (await refresh(client, first["refresh_token"])).json()
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    assert (await client.post(LOGOUT, headers=headers)).status_code == 204
    assert (await refresh(client, second["refresh_token"])).status_code == 401


async def test_a_session_id_is_no_way_into_another_users_session(
    client: Client, ann: Account, bob: Account, settings: Any
) -> None:
    """Even a token naming another user's session (signed with the key) ends none of theirs."""
    anns = await login(client, ann)
    ann_session = jwt.decode(anns["access_token"], options={"verify_signature": False})["sid"]
    claims = jwt.decode(bob.token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "sid": ann_session}, settings.jwt_secret_key, algorithm="HS256")
    assert (await client.post(LOGOUT, headers={"Authorization": f"Bearer {forged}"})).status_code == 204
    assert (await refresh(client, anns["refresh_token"])).status_code == 200


async def test_a_token_that_names_no_session_must_send_the_refresh_token(
    client: Client, ann: Account, settings: Any
) -> None:
    pair = await login(client, ann)
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    claims.pop("sid")
    headers = {"Authorization": "Bearer " + jwt.encode(claims, settings.jwt_secret_key, algorithm="HS256")}
    refused = await client.post(LOGOUT, headers=headers)
    assert assert_error(refused, 400)["errors"][0]["field"] == "refresh_token"
    with_body = await client.post(LOGOUT, json={"refresh_token": pair["refresh_token"]}, headers=headers)
    assert with_body.status_code == 204
    assert (await refresh(client, pair["refresh_token"])).status_code == 401


@pytest.mark.parametrize(
    "body", [{"refresh_token": "not-a-token"}, {"refresh_token": ""}, {}, {"refresh_token": 5}, {"x": "y"}]
)
async def test_bad_refresh_requests(client: Client, body: dict[str, Any]) -> None:
    response = await client.post(REFRESH, json=body)
    assert_error(response, 401 if body == {"refresh_token": "not-a-token"} else 400)


async def test_an_expired_refresh_token_is_refused(client: Client, ann: Account, engine: Any) -> None:
    token = (await login(client, ann))["refresh_token"]
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'"))
    assert (await refresh(client, token)).status_code == 401


async def test_deleting_the_account_ends_its_refresh_tokens(client: Client, register: Any) -> None:
    account = await register()
    token = (await login(client, account))["refresh_token"]
    assert (await client.delete("/api/v1/users/me", headers=account.headers)).status_code == 204
    assert (await refresh(client, token)).status_code == 401


async def test_only_digests_are_stored(client: Client, ann: Account, engine: Any) -> None:
    token = (await login(client, ann))["refresh_token"]
    async with engine.connect() as connection:
        stored = (await connection.execute(text("SELECT token_hash FROM refresh_tokens"))).scalars().all()
    assert stored
    assert token not in stored
    assert all(len(digest) == 64 for digest in stored)


async def test_the_prune_command_deletes_expired_tokens_only(
    client: Client, ann: Account, engine: Any, settings: Any
) -> None:
    kept = (await login(client, ann))["refresh_token"]
    await login(client, ann)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE refresh_tokens SET expires_at = now() - interval '1 day' "
                "WHERE id = (SELECT max(id) FROM refresh_tokens)"
            )
        )
    environment = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DATABASE_POOLER": settings.database_pooler,  # behind the test PgBouncer: transaction
        "JWT_SECRET_KEY": settings.jwt_secret_key,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "todo_svc.cli", "tokens", "prune"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "deleted 1 expired refresh tokens" in result.stdout
    async with engine.connect() as connection:
        assert (
            await connection.scalar(text("SELECT count(*) FROM refresh_tokens WHERE expires_at < now()")) == 0
        )
        assert await connection.scalar(text("SELECT count(*) FROM refresh_tokens")) == 2  # register's + kept
    assert (await refresh(client, kept)).status_code == 200
