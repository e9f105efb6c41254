"""Simultaneous changes of one task: no update is lost, and each moves `updated_at` forward."""

from __future__ import annotations

import asyncio

import httpx
from conftest import concurrently
from helpers import create_task, fetch_task, utc_timestamp


async def toggle_concurrently(client, account, task_id: int, count: int) -> list[httpx.Response]:
    url = f"{account.tasks_url}/{task_id}/complete"

    async def toggles(concurrent: httpx.AsyncClient) -> list[httpx.Response]:
        return await asyncio.gather(*(concurrent.patch(url, headers=account.headers) for _ in range(count)))

    responses = await concurrently(client, toggles)
    assert [r.status_code for r in responses] == [200] * count, [
        r.text for r in responses if r.status_code != 200
    ]
    return responses


async def test_concurrent_toggles_lose_no_update(client, ann) -> None:
    task = await create_task(client, ann)
    count = 50
    responses = await toggle_concurrently(client, ann, task["id"], count)
    states = [r.json()["completed"] for r in responses]
    assert states.count(True) == states.count(False) == count // 2  # each toggle saw the one before
    final = await fetch_task(client, ann, task["id"])
    assert final["completed"] is (count % 2 == 1)
    assert final["created_at"] == task["created_at"]
    assert all(utc_timestamp(final["updated_at"]) >= utc_timestamp(r.json()["updated_at"]) for r in responses)


async def test_concurrent_changes_each_move_updated_at_forward(client, ann) -> None:
    task = await create_task(client, ann)
    responses = await toggle_concurrently(client, ann, task["id"], 20)
    stamps = sorted(utc_timestamp(r.json()["updated_at"]) for r in responses)
    assert len(set(stamps)) == len(stamps), "two different changes left the same updated_at"
    assert stamps[0] > utc_timestamp(task["updated_at"])


async def test_concurrent_patches_of_different_fields_all_apply(client, ann) -> None:
    task = await create_task(client, ann)
    url = f"{ann.tasks_url}/{task['id']}"
    bodies = [
        [{"title": f"title {n}"}, {"description": f"text {n}"}, {"completed": n % 2 == 0}][n % 3]
        for n in range(20)
    ]

    async def patches(concurrent: httpx.AsyncClient) -> list[httpx.Response]:
        return await asyncio.gather(
            *(concurrent.patch(url, json=body, headers=ann.headers) for body in bodies)
        )

    responses = await concurrently(client, patches)
    assert [r.status_code for r in responses] == [200] * len(bodies), [r.text for r in responses]
    for body, response in zip(bodies, responses, strict=True):
        assert {key: response.json()[key] for key in body} == body
    final = await fetch_task(client, ann, task["id"])
    for field in ("title", "description", "completed"):
        assert final[field] in [body[field] for body in bodies if field in body]
    latest = max(responses, key=lambda r: utc_timestamp(r.json()["updated_at"]))
    assert utc_timestamp(final["updated_at"]) == utc_timestamp(latest.json()["updated_at"])


async def test_a_page_and_its_total_agree_while_tasks_come_and_go(client, ann) -> None:
    """The page and `total` are one read: `total` never counts fewer tasks than the page shows."""
    for number in range(12):
        await create_task(client, ann, title=f"kept {number}")

    async def churn_and_read(concurrent: httpx.AsyncClient) -> list[dict]:
        async def churn() -> None:
            for number in range(30):
                created = await concurrent.post(
                    ann.tasks_url, json={"title": f"passing {number}"}, headers=ann.headers
                )
                await concurrent.delete(f"{ann.tasks_url}/{created.json()['id']}", headers=ann.headers)

        async def read(offset: int) -> list[dict]:
            pages = []
            for _ in range(30):
                answer = await concurrent.get(
                    ann.tasks_url, params={"limit": 5, "offset": offset}, headers=ann.headers
                )
                pages.append(answer.json())
            return pages

        *_, first, later = await asyncio.gather(churn(), churn(), read(0), read(10))
        return [*first, *later]

    for page in await concurrently(client, churn_and_read):
        assert page["total"] >= page["offset"] + len(page["items"]), page
        assert 12 <= page["total"] <= 14, page  # the kept tasks, and at most two passing at once
