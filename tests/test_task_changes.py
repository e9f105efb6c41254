"""GET /api/v1/users/{user_id}/tasks/changes: every write feeds it in its own transaction, a client
that follows it ends with the server's tasks, and its tokens are the owner's, signed and short-lived."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from conftest import Account, concurrently
from helpers import assert_error, both_backends, count_rows, create_task, listed_tasks
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_svc.api.cursors import Positions
from todo_svc.services.tasks import FeedPosition
from todo_svc.settings import Settings

TestClient = AsyncTestClient[Litestar]
Client = TestClient | httpx.AsyncClient  # the test client, or a concurrent one
ME = "/api/v1/users/me"


def changes_url(account: Account) -> str:
    return f"{account.tasks_url}/changes"


async def poll(client: Client, account: Account, since: str | None = None, limit: int = 50) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit} | ({"since": since} if since is not None else {})
    response = await client.get(changes_url(account), params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "deleted", "next_since", "has_more"}, body
    return body


async def now_token(client: Client, account: Account) -> str:
    body = await poll(client, account)
    assert (body["items"], body["deleted"], body["has_more"]) == ([], [], False)
    return str(body["next_since"])


async def follow(
    client: Client, account: Account, since: str, local: dict[int, dict[str, Any]], limit: int = 3
) -> str:
    """Apply the feed from `since` to `local` (upsert items, drop deleted) until caught up."""
    while True:
        page = await poll(client, account, since, limit)
        assert len(page["items"]) + len(page["deleted"]) <= limit, page
        local.update({item["id"]: item for item in page["items"]})
        for task_id in page["deleted"]:
            local.pop(task_id, None)
        since = page["next_since"]
        if not page["has_more"]:
            return since


async def by_id(client: Client, account: Account) -> dict[int, dict[str, Any]]:
    return {task["id"]: task for task in await listed_tasks(client, account)}


async def batch(client: Client, account: Account, path: str, body: Any) -> httpx.Response:
    return await client.post(f"{account.tasks_url}/batch{path}", json=body, headers=account.headers)


@both_backends
async def test_a_client_following_the_feed_ends_with_the_servers_tasks(
    client: TestClient, ann: Account
) -> None:
    kept, edited, toggled, doomed = [(await create_task(client, ann, title=t))["id"] for t in "abcd"]
    since = await now_token(client, ann)
    local = await by_id(client, ann)
    url = ann.tasks_url

    fresh = await create_task(client, ann, title="new", description="from the phone")
    await client.put(f"{url}/{edited}", json={"title": "replaced", "completed": True}, headers=ann.headers)
    await client.patch(f"{url}/{fresh['id']}", json={"description": None}, headers=ann.headers)
    await client.patch(f"{url}/{toggled}/complete", headers=ann.headers)
    since = await follow(client, ann, since, local)  # part-way: the device goes on afterwards
    assert local == await by_id(client, ann)

    await client.patch(f"{url}/{toggled}/complete", json={"completed": False}, headers=ann.headers)
    assert (await client.delete(f"{url}/{doomed}", headers=ann.headers)).status_code == 204
    created = await batch(client, ann, "", {"tasks": [{"title": f"batch {n}"} for n in range(5)]})
    batch_ids = [item["id"] for item in created.json()["items"]]
    done = await batch(client, ann, "/complete", {"ids": [kept, *batch_ids[:2]], "completed": True})
    assert done.status_code == 200, done.text
    gone = await batch(client, ann, "/delete", {"ids": [batch_ids[2], fresh["id"]]})
    assert gone.json() == {"deleted": 2}

    await follow(client, ann, since, local)
    assert local == await by_id(client, ann)
    assert doomed not in local
    assert local[kept]["completed"] is True


async def test_pages_come_in_change_order_once_each(client: TestClient, ann: Account) -> None:
    since = await now_token(client, ann)
    a, b, c, d, e = [(await create_task(client, ann, title=t))["id"] for t in "abcde"]
    await client.patch(f"{ann.tasks_url}/{a}", json={"title": "a, later"}, headers=ann.headers)
    await client.delete(f"{ann.tasks_url}/{b}", headers=ann.headers)

    pages: list[dict[str, Any]] = []
    while not pages or pages[-1]["has_more"]:
        pages.append(await poll(client, ann, pages[-1]["next_since"] if pages else since, limit=2))
    assert [([item["id"] for item in p["items"]], p["deleted"]) for p in pages] == [
        ([c, d], []),
        ([e, a], []),
        ([], [b]),
    ]
    assert [p["has_more"] for p in pages] == [True, True, False]
    assert pages[1]["items"][1]["title"] == "a, later"  # as it is now

    caught_up = await poll(client, ann, pages[-1]["next_since"], limit=2)
    assert (caught_up["items"], caught_up["deleted"], caught_up["has_more"]) == ([], [], False)
    await client.patch(f"{ann.tasks_url}/{c}/complete", headers=ann.headers)
    later = await poll(client, ann, caught_up["next_since"], limit=2)
    assert ([(i["id"], i["completed"]) for i in later["items"]], later["deleted"]) == ([(c, True)], [])


async def test_a_write_that_rolled_back_never_shows(client: TestClient, ann: Account, bob: Account) -> None:
    mine = await create_task(client, ann)
    url = f"{ann.tasks_url}/{mine['id']}"
    stale = (await client.get(url, headers=ann.headers)).headers["etag"]
    await client.patch(url, json={"title": "moved on"}, headers=ann.headers)
    bobs = (await create_task(client, bob))["id"]
    since = await now_token(client, ann)

    assert_error(await batch(client, ann, "/complete", {"ids": [mine["id"], bobs], "completed": True}), 404)
    assert_error(await batch(client, ann, "/delete", {"ids": [mine["id"], bobs]}), 404)
    stale_headers = {**ann.headers, "If-Match": stale}
    assert_error(await client.patch(url, json={"title": "lost"}, headers=stale_headers), 412)
    assert_error(await client.delete(url, headers=stale_headers), 412)

    body = await poll(client, ann, since)
    assert (body["items"], body["deleted"], body["has_more"]) == ([], [], False)


async def test_a_feed_is_the_owners_alone(client: TestClient, ann: Account, bob: Account) -> None:
    since = await now_token(client, ann)
    assert_error(await client.get(changes_url(ann), headers=bob.headers), 403)
    assert_error(await client.get(changes_url(ann), params={"since": since}, headers=bob.headers), 403)
    at_bobs = await client.get(changes_url(bob), params={"since": since}, headers=bob.headers)
    assert_error(at_bobs, 400, field="since")

    bobs = (await create_task(client, bob))["id"]
    await client.patch(f"{bob.tasks_url}/{bobs}/complete", headers=bob.headers)
    await batch(client, bob, "", {"tasks": [{"title": "bob's"}]})
    await client.delete(f"{bob.tasks_url}/{bobs}", headers=bob.headers)
    body = await poll(client, ann, since)
    assert (body["items"], body["deleted"]) == ([], [])


def feed_token(settings: Settings, account: Account, age: timedelta) -> str:
    """A token of the service's secret that caught up `age` ago, before any change."""
    position = FeedPosition(change=0, as_of=datetime.now(UTC) - age)
    return Positions(settings.jwt_secret_key).since_token(account.id, position)


async def test_a_token_older_than_the_retention_is_410(
    client: TestClient, ann: Account, settings: Settings
) -> None:
    task = await create_task(client, ann)
    assert settings.task_tombstone_retention_days == 30
    expired = feed_token(settings, ann, timedelta(days=31))
    response = await client.get(changes_url(ann), params={"since": expired}, headers=ann.headers)
    assert "30 days" in assert_error(response, 410)["detail"]

    inside = await poll(client, ann, feed_token(settings, ann, timedelta(days=30, minutes=-5)))
    assert ([item["id"] for item in inside["items"]], inside["has_more"]) == ([task["id"]], False)


async def test_an_altered_token_or_a_list_cursor_is_400(client: TestClient, ann: Account) -> None:
    since = await now_token(client, ann)
    middle = len(since) // 2
    altered = since[:middle] + ("A" if since[middle] != "A" else "B") + since[middle + 1 :]
    response = await client.get(changes_url(ann), params={"since": altered}, headers=ann.headers)
    assert_error(response, 400, field="since")

    for title in "abc":
        await create_task(client, ann, title=title)
    listed = await client.get(ann.tasks_url, params={"limit": 1}, headers=ann.headers)
    cursor = listed.json()["next_cursor"]
    assert cursor
    response = await client.get(changes_url(ann), params={"since": cursor}, headers=ann.headers)
    assert_error(response, 400, field="since")
    as_cursor = await client.get(ann.tasks_url, params={"cursor": since}, headers=ann.headers)
    assert_error(as_cursor, 400, field="cursor")


@both_backends
async def test_deleting_the_account_removes_its_tombstones_and_counters(
    client: TestClient, ann: Account, bob: Account, engine: AsyncEngine
) -> None:
    for owner in (ann, bob):
        task_ids = [(await create_task(client, owner, title=t))["id"] for t in "abc"]
        await client.delete(f"{owner.tasks_url}/{task_ids[0]}", headers=owner.headers)
        await batch(client, owner, "/delete", {"ids": task_ids[1:2]})

    def rows(table: str, account: Account) -> Any:
        return count_rows(engine, f"SELECT count(*) FROM {table} WHERE user_id = :id", id=account.id)  # noqa: S608

    assert (await rows("task_tombstones", ann), await rows("task_counters", ann)) == (2, 1)
    assert (await client.delete(ME, headers=ann.headers)).status_code == 204
    assert (await rows("task_tombstones", ann), await rows("task_counters", ann)) == (0, 0)
    assert (await rows("task_tombstones", bob), await rows("task_counters", bob)) == (2, 1)


async def test_concurrent_creates_and_deletes_lose_no_committed_change(
    client: TestClient, ann: Account
) -> None:
    """A poll racing uncommitted writes must never move past a change that commits after it."""
    doomed = [(await create_task(client, ann, title=f"old {n}"))["id"] for n in range(10)]
    since = await now_token(client, ann)
    local = await by_id(client, ann)
    created: list[int] = []
    workers = 4
    finished: list[int] = []

    async def churn_while_polling(concurrent: httpx.AsyncClient) -> str:
        async def write(worker: int) -> None:
            for n in range(worker, 10, workers):  # 20 writes in all: each worker creates, deletes, …
                response = await concurrent.post(ann.tasks_url, json={"title": f"n{n}"}, headers=ann.headers)
                assert response.status_code == 201, response.text
                created.append(response.json()["id"])
                response = await concurrent.delete(f"{ann.tasks_url}/{doomed[n]}", headers=ann.headers)
                assert response.status_code == 204, response.text
            finished.append(worker)

        async def poll_while_writing() -> str:
            token = since
            while len(finished) < workers:
                token = await follow(concurrent, ann, token, local, limit=50)
            return token

        token, *_ = await asyncio.gather(poll_while_writing(), *(write(w) for w in range(workers)))
        return str(token)

    token = await concurrently(client, churn_while_polling)
    await follow(client, ann, token, local)
    server = await by_id(client, ann)
    assert len(created) == 10
    assert set(server) == set(created)  # the tasks created, none of those deleted
    assert local == server


async def test_a_batch_racing_single_writes_of_its_tasks_never_deadlocks(
    client: TestClient, ann: Account
) -> None:
    """Each write also takes the owner's counter row: a batch must not hold it while it waits for a
    task that a single write holds while that write waits for the counter (PostgreSQL: a 500)."""
    created = await batch(client, ann, "", {"tasks": [{"title": f"t {n}"} for n in range(100)]})
    ids = [item["id"] for item in created.json()["items"]]

    async def race(concurrent: httpx.AsyncClient) -> list[httpx.Response]:
        whole = {"ids": ids, "completed": True}
        patches = [
            concurrent.patch(f"{ann.tasks_url}/{task_id}", json={"title": "p"}, headers=ann.headers)
            for task_id in ids[-20:]
        ]
        return await asyncio.gather(batch(concurrent, ann, "/complete", whole), *patches)

    for _ in range(10):
        responses = await concurrently(client, race)
        assert [r.status_code for r in responses] == [200] * 21, [r.text for r in responses]
