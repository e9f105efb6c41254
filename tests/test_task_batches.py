"""Task batches: create, complete and delete up to 100 tasks in one request, all or nothing, for the
owner only; batch creation is idempotent too."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Account
from helpers import assert_error, both_backends, create_task
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]


@both_backends
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
    mine = (await create_task(client, ann))["id"]
    bobs = (await create_task(client, bob))["id"]

    completed = await client.post(
        f"{ann.tasks_url}/batch/complete", json={"ids": [mine, bobs], "completed": True}, headers=ann.headers
    )
    assert str(bobs) in assert_error(completed, 404)["detail"]
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
    await create_task(client, ann)
    response = await client.post(f"{ann.tasks_url}/batch{path}", json=body, headers=ann.headers)
    assert assert_error(response, 400)["errors"]
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 1


async def test_batch_ids_may_be_written_as_whole_floats(client: Client, ann: Account) -> None:
    """The OpenAPI document says `integer`, and JSON Schema's integers include `2.0`."""
    task = await create_task(client, ann)
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
