"""Keyset paging of the task list (`next_cursor`, `Link`, `cursor=`) and its ETag (304 when unchanged)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from helpers import assert_error, both_backends
from test_task_list import BASE, SORTS, seed

LINK = re.compile(r'^<([^>]+)>; rel="next"$')


async def listed(client, account, **params: Any):
    response = await client.get(account.tasks_url, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return response


async def walk(client, account, *, during=None, **params: Any) -> list[int]:
    """Every page by `next_cursor`; `during` runs between pages. The ids, in the order read."""
    seen: list[int] = []
    body = (await listed(client, account, **params)).json()
    while True:
        seen += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            return seen
        if during is not None:
            await during()
        cursor_params = {**params, "cursor": body["next_cursor"]}
        body = (await listed(client, account, **cursor_params)).json()


@both_backends
@pytest.mark.parametrize("sort", SORTS)
async def test_a_cursor_walk_reads_every_task_once_in_order_whatever_the_sort(
    client, engine, ann, sort
) -> None:
    # Titles and times that tie, so that the id breaks the ties across page boundaries.
    ids = await seed(
        engine,
        ann,
        [{"title": f"t{n % 3}", "created_at": BASE + timedelta(seconds=n % 4)} for n in range(23)],
    )
    seen = await walk(client, ann, sort=sort, limit=4)
    everything = (await listed(client, ann, sort=sort, limit=100)).json()
    assert seen == [item["id"] for item in everything["items"]]
    assert sorted(seen) == sorted(ids)


@both_backends
async def test_a_cursor_walk_never_skips_or_repeats_while_other_tasks_come_and_go(
    client, engine, ann
) -> None:
    kept = set(await seed(engine, ann, [{} for _ in range(30)]))
    doomed = sorted(kept)[::5]  # deleted during the walk, some before the walk reaches them
    kept -= set(doomed)
    changed = sorted(kept)[1::7]  # edited during the walk (the walk's order is by creation)
    created: list[int] = []

    async def meanwhile() -> None:
        if doomed:
            response = await client.delete(f"{ann.tasks_url}/{doomed.pop()}", headers=ann.headers)
            assert response.status_code == 204
        response = await client.post(ann.tasks_url, json={"title": "new"}, headers=ann.headers)
        created.append(response.json()["id"])
        for task_id in changed:
            response = await client.patch(
                f"{ann.tasks_url}/{task_id}", json={"title": "x"}, headers=ann.headers
            )
            assert response.status_code == 200

    for sort in ("-created_at", "created_at"):
        seen = await walk(client, ann, during=meanwhile, sort=sort, limit=4)
        assert len(seen) == len(set(seen)), "a task was read twice"
        assert kept <= set(seen), f"skipped: {kept - set(seen)}"


@both_backends
async def test_the_next_page_is_also_linked_and_the_last_page_has_no_cursor(client, engine, ann) -> None:
    await seed(engine, ann, [{"completed": n % 2 == 0, "title": f"milk {n}"} for n in range(5)])
    first = await listed(client, ann, limit=2, completed="true", q="milk", sort="title")
    link = LINK.match(first.headers["link"])
    assert link is not None, first.headers["link"]
    body = first.json()
    assert body["total"] == 3
    assert body["next_cursor"] is not None
    second = await client.get(link.group(1), headers=ann.headers)  # the link alone, as a client follows it
    assert second.status_code == 200, second.text
    assert [item["title"] for item in second.json()["items"]] == ["milk 4"]
    assert second.json()["next_cursor"] is None
    assert "link" not in second.headers
    assert second.json()["total"] == 3


@both_backends
async def test_offset_pages_carry_a_cursor_to_go_on_by_keyset(client, engine, ann) -> None:
    ids = await seed(engine, ann, [{} for _ in range(6)])
    body = (await listed(client, ann, limit=2, offset=2, sort="created_at")).json()
    assert [item["id"] for item in body["items"]] == ids[2:4]
    after = (await listed(client, ann, limit=2, sort="created_at", cursor=body["next_cursor"])).json()
    assert [item["id"] for item in after["items"]] == ids[4:6]


@both_backends
async def test_bad_cursors_are_refused_in_the_error_format(client, register, engine, ann) -> None:
    await seed(engine, ann, [{} for _ in range(3)])
    cursor = (await listed(client, ann, limit=1)).json()["next_cursor"]
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    bob = await register("bob@example.com")
    await seed(engine, bob, [{} for _ in range(3)])
    bobs = (await listed(client, bob, limit=1)).json()["next_cursor"]
    for params in (
        {"cursor": flipped},
        {"cursor": "not-a-cursor"},
        {"cursor": bobs},  # another user's
        {"cursor": cursor, "sort": "title"},  # another list's
        {"cursor": cursor, "completed": "false"},
        {"cursor": cursor, "offset": 1},
    ):
        response = await client.get(ann.tasks_url, params={"limit": 1, **params}, headers=ann.headers)
        field = "offset" if "offset" in params else "cursor"
        assert_error(response, 400, field=field)
        assert cursor not in response.text


@both_backends
async def test_the_list_etag_answers_304_until_any_task_changes(client, ann) -> None:
    await client.post(ann.tasks_url, json={"title": "a"}, headers=ann.headers)
    first = await listed(client, ann)
    tag = first.headers["etag"]
    unchanged = await client.get(ann.tasks_url, headers={**ann.headers, "If-None-Match": tag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == tag
    other_list = await client.get(
        ann.tasks_url, params={"limit": 1}, headers={**ann.headers, "If-None-Match": tag}
    )
    assert other_list.status_code == 200  # another page is another representation

    task_id = first.json()["items"][0]["id"]
    for change in (
        client.patch(f"{ann.tasks_url}/{task_id}/complete", headers=ann.headers),
        client.post(ann.tasks_url, json={"title": "b"}, headers=ann.headers),
        client.delete(f"{ann.tasks_url}/{task_id}", headers=ann.headers),
    ):
        assert (await change).status_code < 300
        changed = await client.get(ann.tasks_url, headers={**ann.headers, "If-None-Match": tag})
        assert changed.status_code == 200
        assert changed.headers["etag"] != tag
        tag = changed.headers["etag"]


@both_backends
async def test_totals_follow_every_kind_of_write(client, ann) -> None:
    created = [
        (await client.post(ann.tasks_url, json={"title": f"t{n}"}, headers=ann.headers)).json()["id"]
        for n in range(4)
    ]
    batch = {"tasks": [{"title": "b1", "completed": True}, {"title": "b2"}]}
    assert (await client.post(f"{ann.tasks_url}/batch", json=batch, headers=ann.headers)).status_code == 201
    await client.patch(f"{ann.tasks_url}/{created[0]}/complete", headers=ann.headers)
    body = {"ids": created[1:3], "completed": True}
    await client.post(f"{ann.tasks_url}/batch/complete", json=body, headers=ann.headers)
    await client.delete(f"{ann.tasks_url}/{created[1]}", headers=ann.headers)
    await client.post(f"{ann.tasks_url}/batch/delete", json={"ids": [created[3]]}, headers=ann.headers)

    async def total(**params: Any) -> int:
        return int((await listed(client, ann, **params)).json()["total"])

    assert (await total(), await total(completed="true"), await total(completed="false")) == (4, 3, 1)
