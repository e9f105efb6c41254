"""Conditional requests on a task: a strong ETag that changes with every change, 304 for If-None-Match,
and If-Match that lets a write through only while the task is as the client last saw it (else 412)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Account
from helpers import assert_error, both_backends, create_task
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]


@both_backends
async def test_etag_changes_with_every_change_and_if_none_match_gives_304(
    client: Client, ann: Account
) -> None:
    task = await create_task(client, ann)
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
    task = await create_task(client, ann)
    url = f"{ann.tasks_url}/{task['id']}"
    stale = (await client.get(url, headers=ann.headers)).headers["etag"]
    current = (await client.patch(url, json={"description": "moved on"}, headers=ann.headers)).json()

    response = await client.request(method, url + path, json=body, headers={**ann.headers, "If-Match": stale})
    assert_error(response, 412)
    assert (await client.get(url, headers=ann.headers)).json() == current


async def test_a_current_if_match_lets_the_write_through(client: Client, ann: Account) -> None:
    task = await create_task(client, ann)
    url = f"{ann.tasks_url}/{task['id']}"
    tag = (await client.get(url, headers=ann.headers)).headers["etag"]
    response = await client.put(url, json={"title": "Replaced"}, headers={**ann.headers, "If-Match": tag})
    assert response.status_code == 200
    assert response.json()["title"] == "Replaced"
    # The tag it had is spent: a second write with it loses.
    second = await client.put(url, json={"title": "Again"}, headers={**ann.headers, "If-Match": tag})
    assert second.status_code == 412


async def test_delete_honours_if_match(client: Client, ann: Account) -> None:
    task = await create_task(client, ann)
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
    bobs = await create_task(client, bob)
    tag = (await client.get(f"{bob.tasks_url}/{bobs['id']}", headers=bob.headers)).headers["etag"]
    response = await client.put(
        f"{ann.tasks_url}/{bobs['id']}", json={"title": "mine now"}, headers={**ann.headers, "If-Match": tag}
    )
    assert response.status_code == 404
    assert (await client.get(f"{bob.tasks_url}/{bobs['id']}", headers=bob.headers)).json()[
        "title"
    ] == "Buy milk"


async def test_weak_and_wildcard_if_match(client: Client, ann: Account) -> None:
    task = await create_task(client, ann)
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
