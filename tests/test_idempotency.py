"""Idempotency-Key on task creation: a retry replays the first answer and creates nothing, a key is
its user's, a failed request does not spend it, a twin in flight is 409; deleting the account deletes
its keys."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from conftest import Account, concurrently
from helpers import assert_error, both_backends, create_task
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from todo_svc.db.idempotency import IdempotencyRepository

Client = AsyncTestClient[Litestar]


@both_backends
async def test_a_retried_create_replays_the_first_response_and_creates_nothing(
    client: Client, ann: Account
) -> None:
    headers = {**ann.headers, "Idempotency-Key": "create-milk-1"}
    first = await client.post(ann.tasks_url, json={"title": "Buy milk"}, headers=headers)
    retry = await client.post(ann.tasks_url, json={"title": "Buy milk"}, headers=headers)

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 1


async def test_the_same_key_with_another_body_is_422(client: Client, ann: Account) -> None:
    headers = {**ann.headers, "Idempotency-Key": "k"}
    assert (await client.post(ann.tasks_url, json={"title": "one"}, headers=headers)).status_code == 201
    other = await client.post(ann.tasks_url, json={"title": "two"}, headers=headers)
    assert_error(other, 422)
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 1


async def test_keys_belong_to_their_user(client: Client, ann: Account, bob: Account) -> None:
    await create_task(client, ann, {"Idempotency-Key": "shared"}, title="ann's")
    bobs = await client.post(
        bob.tasks_url, json={"title": "ann's"}, headers={**bob.headers, "Idempotency-Key": "shared"}
    )
    assert bobs.status_code == 201
    assert "idempotent-replayed" not in bobs.headers
    assert bobs.json()["user_id"] == bob.id


async def test_a_failed_request_does_not_spend_its_key(client: Client, ann: Account) -> None:
    headers = {**ann.headers, "Idempotency-Key": "retry-after-fix"}
    assert (await client.post(ann.tasks_url, json={"title": ""}, headers=headers)).status_code == 400
    assert (await client.post(ann.tasks_url, json={"title": "fixed"}, headers=headers)).status_code == 201


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "ключ".encode()])
async def test_malformed_keys_are_400(client: Client, ann: Account, key: str | bytes) -> None:
    response = await client.post(
        ann.tasks_url, json={"title": "t"}, headers={**ann.headers, "Idempotency-Key": key}
    )
    assert response.status_code == 400
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 0


async def test_a_twin_still_in_flight_is_409(client: Client, ann: Account, engine: Any) -> None:
    """Hold the key's lock from another connection, as a running twin request would."""
    lock_id = IdempotencyRepository.lock_id(ann.id, "busy-key")
    async with engine.connect() as twin:
        await twin.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
        response = await client.post(
            ann.tasks_url, json={"title": "t"}, headers={**ann.headers, "Idempotency-Key": "busy-key"}
        )
        await twin.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
    assert response.status_code == 409
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 0


async def test_simultaneous_twins_create_exactly_one_task(client: Client, ann: Account) -> None:
    headers = {**ann.headers, "Idempotency-Key": "twins"}

    async def send_twins(concurrent: httpx.AsyncClient) -> list[httpx.Response]:
        return await asyncio.gather(
            *(concurrent.post(ann.tasks_url, json={"title": "once"}, headers=headers) for _ in range(8))
        )

    responses = await concurrently(client, send_twins)
    firsts = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
    assert len(firsts) == 1
    for response in responses:
        assert response.status_code in (201, 409), response.text
        if response.status_code == 201:
            assert response.json() == firsts[0].json()
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 1


async def test_deleting_the_account_removes_its_tasks_and_keys(
    client: Client, register: Any, engine: Any
) -> None:
    account = await register()
    await create_task(client, account, {"Idempotency-Key": "k"})
    assert (await client.delete("/api/v1/users/me", headers=account.headers)).status_code == 204
    async with engine.connect() as connection:
        for table in ("tasks", "idempotency_records"):
            count = await connection.scalar(
                text(f"SELECT count(*) FROM {table} WHERE user_id = :id"),  # noqa: S608 - fixed names
                {"id": account.id},
            )
            assert count == 0
