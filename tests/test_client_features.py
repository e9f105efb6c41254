"""Conditional requests, idempotent creation, batches: the features retrying and SDK clients rely on."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from conftest import Account, concurrently
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]


async def create(client: Client, account: Account, title: str = "Buy milk", **headers: str) -> Any:
    response = await client.post(
        account.tasks_url, json={"title": title}, headers={**account.headers, **headers}
    )
    assert response.status_code == 201, response.text
    return response.json()


# --- ETag, If-None-Match, If-Match -----------------------------------------------------------


@pytest.mark.backends("postgresql", "sqlite")
async def test_etag_changes_with_every_change_and_if_none_match_gives_304(
    client: Client, ann: Account
) -> None:
    task = await create(client, ann)
    url = f"{ann.tasks_url}/{task['id']}"
    first = await client.get(url, headers=ann.headers)
    tag = first.headers["etag"]
    assert tag.startswith('"')
    assert not tag.startswith("W/")

    not_modified = await client.get(url, headers={**ann.headers, "If-None-Match": tag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == tag

    changed = await client.patch(url, json={"title": "Buy oat milk"}, headers=ann.headers)
    assert changed.headers["etag"] != tag
    again = await client.get(url, headers={**ann.headers, "If-None-Match": tag})
    assert again.status_code == 200
    assert again.json()["title"] == "Buy oat milk"
    assert again.headers["etag"] == changed.headers["etag"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("PUT", "", {"title": "Replaced"}), ("PATCH", "", {"title": "Patched"}), ("PATCH", "/complete", None)],
)
async def test_a_stale_if_match_is_412_and_changes_nothing(
    client: Client, ann: Account, method: str, path: str, body: Any
) -> None:
    task = await create(client, ann)
    url = f"{ann.tasks_url}/{task['id']}"
    stale = (await client.get(url, headers=ann.headers)).headers["etag"]
    current = (await client.patch(url, json={"description": "moved on"}, headers=ann.headers)).json()

    response = await client.request(method, url + path, json=body, headers={**ann.headers, "If-Match": stale})
    assert response.status_code == 412
    assert response.json()["status_code"] == 412
    assert (await client.get(url, headers=ann.headers)).json() == current


async def test_a_current_if_match_lets_the_write_through(client: Client, ann: Account) -> None:
    task = await create(client, ann)
    url = f"{ann.tasks_url}/{task['id']}"
    tag = (await client.get(url, headers=ann.headers)).headers["etag"]
    response = await client.put(url, json={"title": "Replaced"}, headers={**ann.headers, "If-Match": tag})
    assert response.status_code == 200
    assert response.json()["title"] == "Replaced"
    # The tag it had is spent: a second write with it loses.
    second = await client.put(url, json={"title": "Again"}, headers={**ann.headers, "If-Match": tag})
    assert second.status_code == 412


async def test_delete_honours_if_match(client: Client, ann: Account) -> None:
    task = await create(client, ann)
    url = f"{ann.tasks_url}/{task['id']}"
    tag = (await client.get(url, headers=ann.headers)).headers["etag"]
    await client.patch(url + "/complete", headers=ann.headers)

    assert (await client.delete(url, headers={**ann.headers, "If-Match": tag})).status_code == 412
    assert (await client.get(url, headers=ann.headers)).status_code == 200
    fresh = (await client.get(url, headers=ann.headers)).headers["etag"]
    assert (await client.delete(url, headers={**ann.headers, "If-Match": fresh})).status_code == 204


async def test_if_match_of_a_missing_or_foreign_task_is_404(
    client: Client, ann: Account, bob: Account
) -> None:
    bobs = await create(client, bob)
    tag = (await client.get(f"{bob.tasks_url}/{bobs['id']}", headers=bob.headers)).headers["etag"]
    response = await client.put(
        f"{ann.tasks_url}/{bobs['id']}", json={"title": "mine now"}, headers={**ann.headers, "If-Match": tag}
    )
    assert response.status_code == 404
    assert (await client.get(f"{bob.tasks_url}/{bobs['id']}", headers=bob.headers)).json()[
        "title"
    ] == "Buy milk"


async def test_weak_and_wildcard_if_match(client: Client, ann: Account) -> None:
    task = await create(client, ann)
    url = f"{ann.tasks_url}/{task['id']}"
    tag = (await client.get(url, headers=ann.headers)).headers["etag"]
    weak = await client.patch(url, json={"title": "x"}, headers={**ann.headers, "If-Match": f"W/{tag}"})
    assert weak.status_code == 412  # strong comparison: a weak tag never matches
    listed = await client.patch(
        url, json={"title": "y"}, headers={**ann.headers, "If-Match": f'"0.0", {tag}'}
    )
    assert listed.status_code == 200
    anything = await client.patch(url, json={"title": "z"}, headers={**ann.headers, "If-Match": "*"})
    assert anything.status_code == 200


# --- Idempotency-Key ---------------------------------------------------------------------------


@pytest.mark.backends("postgresql", "sqlite")
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
    assert other.status_code == 422
    assert other.json()["status_code"] == 422
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 1


async def test_keys_belong_to_their_user(client: Client, ann: Account, bob: Account) -> None:
    await create(client, ann, "ann's", **{"Idempotency-Key": "shared"})
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
    from sqlalchemy import text

    from todo_svc.db.repositories import IdempotencyRepository

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


# --- Batches -----------------------------------------------------------------------------------


@pytest.mark.backends("postgresql", "sqlite")
async def test_batch_create_complete_delete(client: Client, ann: Account) -> None:
    titles = [f"task {n}" for n in range(100)]
    created = await client.post(
        f"{ann.tasks_url}/batch", json={"tasks": [{"title": t} for t in titles]}, headers=ann.headers
    )
    assert created.status_code == 201, created.text
    items = created.json()["items"]
    assert [item["title"] for item in items] == titles
    ids = [item["id"] for item in items]

    completed = await client.post(
        f"{ann.tasks_url}/batch/complete", json={"ids": ids[:10], "completed": True}, headers=ann.headers
    )
    assert completed.status_code == 200
    assert [item["id"] for item in completed.json()["items"]] == ids[:10]
    assert all(item["completed"] for item in completed.json()["items"])

    deleted = await client.post(f"{ann.tasks_url}/batch/delete", json={"ids": ids[:30]}, headers=ann.headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"deleted": 30}
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 70


async def test_a_foreign_id_fails_the_whole_batch(client: Client, ann: Account, bob: Account) -> None:
    mine = (await create(client, ann))["id"]
    bobs = (await create(client, bob))["id"]

    completed = await client.post(
        f"{ann.tasks_url}/batch/complete", json={"ids": [mine, bobs], "completed": True}, headers=ann.headers
    )
    assert completed.status_code == 404
    assert str(bobs) in completed.json()["detail"]
    assert (await client.get(f"{ann.tasks_url}/{mine}", headers=ann.headers)).json()["completed"] is False

    deleted = await client.post(
        f"{ann.tasks_url}/batch/delete", json={"ids": [mine, bobs]}, headers=ann.headers
    )
    assert deleted.status_code == 404
    assert (await client.get(f"{ann.tasks_url}/{mine}", headers=ann.headers)).status_code == 200
    assert (await client.get(f"{bob.tasks_url}/{bobs}", headers=bob.headers)).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("", {"tasks": []}),
        ("", {"tasks": [{"title": "t"}] * 101}),
        ("", {"tasks": [{"title": "ok"}, {"title": "   "}]}),
        ("/complete", {"ids": [1, 1], "completed": True}),
        ("/complete", {"ids": [1], "completed": "yes"}),
        ("/delete", {"ids": []}),
        ("/delete", {"ids": [0]}),
        ("/delete", {"ids": list(range(1, 102))}),
        ("/delete", {"ids": [2, 2]}),
        ("/delete", {"ids": [2, 2.0]}),
        ("/delete", {"ids": [1.5]}),
        ("/delete", {"ids": ["1"]}),
    ],
)
async def test_invalid_batches_are_400_and_change_nothing(
    client: Client, ann: Account, path: str, body: Any
) -> None:
    await create(client, ann)
    response = await client.post(f"{ann.tasks_url}/batch{path}", json=body, headers=ann.headers)
    assert response.status_code == 400
    assert response.json()["errors"]
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 1


async def test_batch_ids_may_be_written_as_whole_floats(client: Client, ann: Account) -> None:
    """The OpenAPI document says `integer`, and JSON Schema's integers include `2.0`."""
    task = await create(client, ann)
    body = {"ids": [float(task["id"])], "completed": True}
    response = await client.post(f"{ann.tasks_url}/batch/complete", json=body, headers=ann.headers)
    assert response.status_code == 200, response.text
    assert response.json()["items"][0]["id"] == task["id"]


async def test_batches_are_for_the_owner_only(client: Client, ann: Account, bob: Account) -> None:
    for path, body in [
        ("", {"tasks": [{"title": "t"}]}),
        ("/complete", {"ids": [1], "completed": True}),
        ("/delete", {"ids": [1]}),
    ]:
        response = await client.post(f"{ann.tasks_url}/batch{path}", json=body, headers=bob.headers)
        assert response.status_code == 403


async def test_batch_create_is_idempotent_too(client: Client, ann: Account) -> None:
    headers = {**ann.headers, "Idempotency-Key": "batch-1"}
    body = {"tasks": [{"title": "a"}, {"title": "b"}]}
    first = await client.post(f"{ann.tasks_url}/batch", json=body, headers=headers)
    retry = await client.post(f"{ann.tasks_url}/batch", json=body, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 2


# --- Account deletion --------------------------------------------------------------------------


async def test_deleting_the_account_removes_its_tasks_and_keys(
    client: Client, register: Any, engine: Any
) -> None:
    from sqlalchemy import text

    account = await register()
    await create(client, account, **{"Idempotency-Key": "k"})
    assert (await client.delete("/api/v1/users/me", headers=account.headers)).status_code == 204
    async with engine.connect() as connection:
        for table in ("tasks", "idempotency_records"):
            count = await connection.scalar(
                text(f"SELECT count(*) FROM {table} WHERE user_id = :id"),  # noqa: S608 - fixed names
                {"id": account.id},
            )
            assert count == 0
