"""Tasks belong to their owner: another user's path is 403 before anything else is checked, another
user's task under one's own path is 404, every route wants a valid token, and lists hold only one's own."""

from __future__ import annotations

from typing import Any

from helpers import TASK_ROUTES, assert_error, both_backends, create_task, listed_tasks

ALL_ROUTES = [("GET", "", None), ("POST", "", {"title": "Intruder"})] + [
    (method, "/{id}" + suffix, body) for method, suffix, body in TASK_ROUTES
]


async def test_another_users_path_is_403_and_changes_nothing(client, ann, bob, subtests) -> None:
    task = await create_task(client, ann, title="Ann's", description="private")
    for method, suffix, body in ALL_ROUTES:
        with subtests.test(method=method, suffix=suffix):
            url = ann.tasks_url + suffix.format(id=task["id"])
            response = await client.request(method, url, json=body, headers=bob.headers)
            assert_error(response, 403)
            assert "private" not in response.text
            assert await listed_tasks(client, ann) == [task]
            assert await listed_tasks(client, bob) == []


async def test_another_users_task_under_ones_own_path_is_404(client, ann, bob, subtests) -> None:
    task = await create_task(client, ann, title="Ann's", description="private")
    await create_task(client, bob, title="Bob's")
    for method, suffix, body in TASK_ROUTES:
        with subtests.test(method=method, suffix=suffix):
            url = f"{bob.tasks_url}/{task['id']}{suffix}"
            response = await client.request(method, url, json=body, headers=bob.headers)
            assert assert_error(response, 404)["detail"] == f"Task {task['id']} not found"
            assert "private" not in response.text
            assert await listed_tasks(client, ann) == [task]


BEFORE_VALIDATION: list[tuple[str, str, Any]] = [
    ("POST", "", {"title": ""}),
    ("POST", "", {"title": "T", "user_id": 2}),
    ("POST", "", b"{not json"),
    ("PUT", "/{id}", {}),
    ("PATCH", "/{id}", {"title": None}),
    ("PATCH", "/{id}/complete", {"completed": "yes"}),
    ("GET", "/0", None),
    ("GET", "/99999999999999999999", None),
    ("DELETE", "/424242", None),
    ("GET", "?limit=0&sort=nope", None),
]


def body_of(body: Any) -> dict[str, Any]:
    return {"content": body} if isinstance(body, bytes) else {"json": body}


async def test_ownership_is_checked_before_validation_and_existence(client, ann, bob, subtests) -> None:
    task = await create_task(client, ann)
    for method, suffix, body in BEFORE_VALIDATION:
        with subtests.test(method=method, suffix=suffix, body=body):
            url = ann.tasks_url + suffix.format(id=task["id"])
            assert_error(await client.request(method, url, headers=bob.headers, **body_of(body)), 403)
            for user_id in ("99999999999999999999", str(ann.id + bob.id + 100)):
                elsewhere = url.replace(f"/{ann.id}/", f"/{user_id}/")
                assert_error(
                    await client.request(method, elsewhere, headers=bob.headers, **body_of(body)), 403
                )
    assert await listed_tasks(client, ann) == [task]


async def test_without_a_valid_token_every_route_is_401(client, ann, subtests) -> None:
    task = await create_task(client, ann)
    for authorization in (None, "Bearer not-a-jwt", f"Basic {ann.token}", ann.token):
        headers = {"Authorization": authorization} if authorization else {}
        for method, suffix, body in [*ALL_ROUTES, *BEFORE_VALIDATION]:
            with subtests.test(authorization=str(authorization)[:12], method=method, suffix=suffix):
                for user_id in (ann.id, 424242):
                    url = f"/api/v1/users/{user_id}/tasks" + suffix.format(id=task["id"])
                    response = await client.request(method, url, headers=headers, **body_of(body))
                    assert_error(response, 401)
                    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await listed_tasks(client, ann) == [task]


@both_backends
async def test_lists_never_contain_another_users_tasks(client, ann, bob) -> None:
    ann_tasks = [await create_task(client, ann, title=f"shared word {n}") for n in range(3)]
    bob_tasks = [await create_task(client, bob, title=f"shared word {n}", completed=True) for n in range(2)]
    for account, own in ((ann, ann_tasks), (bob, bob_tasks)):
        for params in ({}, {"q": "shared"}, {"completed": "true"}, {"sort": "title"}):
            response = await client.get(account.tasks_url, params=params, headers=account.headers)
            page = response.json()
            expected = [t for t in own if params.get("completed") != "true" or t["completed"]]
            assert sorted(item["id"] for item in page["items"]) == sorted(t["id"] for t in expected)
            assert page["total"] == len(expected)
            assert {item["user_id"] for item in page["items"]} <= {account.id}
