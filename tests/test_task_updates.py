"""Changing a task: PUT replaces it, PATCH changes the fields given, /complete toggles or sets it,
DELETE removes it; every change moves `updated_at` forward and never `created_at`."""

from __future__ import annotations

from helpers import (
    TASK_ROUTES,
    assert_error,
    both_backends,
    create_task,
    fetch_task,
    listed_tasks,
    utc_timestamp,
)

# --- PUT ------------------------------------------------------------------------------------------


@both_backends
async def test_put_replaces_the_whole_task(client, ann) -> None:
    task = await create_task(client, ann, title="Old", description="old text", completed=True)
    url = f"{ann.tasks_url}/{task['id']}"
    response = await client.put(url, json={"title": "  New  "}, headers=ann.headers)
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert (replaced["id"], replaced["user_id"]) == (task["id"], ann.id)
    assert (replaced["title"], replaced["description"], replaced["completed"]) == ("New", None, False)
    assert replaced["created_at"] == task["created_at"]
    assert utc_timestamp(replaced["updated_at"]) > utc_timestamp(task["updated_at"])
    assert await fetch_task(client, ann, task["id"]) == replaced

    full = await client.put(
        url, json={"title": "N", "description": "D", "completed": True}, headers=ann.headers
    )
    assert (full.json()["title"], full.json()["description"], full.json()["completed"]) == ("N", "D", True)


async def test_put_rejects_an_incomplete_or_invalid_body(client, ann, subtests) -> None:
    task = await create_task(client, ann, description="keep", completed=True)
    for body, field in [
        ({}, "title"),
        ({"description": "no title", "completed": True}, "title"),
        ({"title": "  "}, "title"),
        ({"title": None}, "title"),
        ({"title": "x" * 256}, "title"),
        ({"title": "T", "completed": "false"}, "completed"),
        ({"title": "T", "description": "d" * 10_001}, "description"),
        ({"title": "T", "id": 5}, "id"),
        ({"title": "T", "user_id": 5}, "user_id"),
    ]:
        with subtests.test(body=str(body)[:60]):
            response = await client.put(f"{ann.tasks_url}/{task['id']}", json=body, headers=ann.headers)
            assert_error(response, 400, field=field)
            assert await fetch_task(client, ann, task["id"]) == task


async def test_put_of_an_unknown_task_is_404(client, ann) -> None:
    response = await client.put(f"{ann.tasks_url}/424242", json={"title": "T"}, headers=ann.headers)
    assert assert_error(response, 404)["detail"] == "Task 424242 not found"
    assert await listed_tasks(client, ann) == []


# --- PATCH ----------------------------------------------------------------------------------------


@both_backends
async def test_patch_changes_only_the_given_fields(client, ann) -> None:
    task = await create_task(client, ann, title="Title", description="Text", completed=False)
    url = f"{ann.tasks_url}/{task['id']}"
    expected = dict(task)
    for change in (
        {"completed": True},
        {"title": "  Renamed "},
        {"description": "Other"},
        {"description": None},
    ):
        response = await client.patch(url, json=change, headers=ann.headers)
        assert response.status_code == 200, response.text
        expected.update({key: value.strip() if key == "title" else value for key, value in change.items()})
        body = response.json()
        assert {key: body[key] for key in ("title", "description", "completed")} == {
            key: expected[key] for key in ("title", "description", "completed")
        }
        assert body["created_at"] == task["created_at"]
        assert utc_timestamp(body["updated_at"]) > utc_timestamp(expected["updated_at"])
        expected["updated_at"] = body["updated_at"]
        assert await fetch_task(client, ann, task["id"]) == body

    everything = await client.patch(
        url, json={"title": "All", "description": "at once", "completed": False}, headers=ann.headers
    )
    assert (everything.json()["title"], everything.json()["description"]) == ("All", "at once")
    assert everything.json()["completed"] is False


@both_backends
async def test_empty_patch_changes_nothing(client, ann) -> None:
    task = await create_task(client, ann, title="Same", description="Kept", completed=True)
    response = await client.patch(f"{ann.tasks_url}/{task['id']}", json={}, headers=ann.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {key: value for key, value in body.items() if key != "updated_at"} == {
        key: value for key, value in task.items() if key != "updated_at"
    }
    assert utc_timestamp(body["updated_at"]) >= utc_timestamp(task["updated_at"])


async def test_patch_rejects_invalid_values(client, ann, subtests) -> None:
    task = await create_task(client, ann, description="keep")
    for body, field in [
        ({"title": None}, "title"),
        ({"title": ""}, "title"),
        ({"title": " " * 3}, "title"),
        ({"title": "x" * 256}, "title"),
        ({"completed": None}, "completed"),
        ({"completed": "false"}, "completed"),
        ({"completed": 0}, "completed"),
        ({"description": "d" * 10_001}, "description"),
        ({"description": 1}, "description"),
        ({"user_id": 99}, "user_id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"title": "Valid", "nonsense": True}, "nonsense"),
    ]:
        with subtests.test(body=str(body)[:60]):
            response = await client.patch(f"{ann.tasks_url}/{task['id']}", json=body, headers=ann.headers)
            assert_error(response, 400, field=field)
            assert await fetch_task(client, ann, task["id"]) == task


async def test_patch_of_an_unknown_task_is_404(client, ann) -> None:
    response = await client.patch(f"{ann.tasks_url}/424242", json={"completed": True}, headers=ann.headers)
    assert assert_error(response, 404)["detail"] == "Task 424242 not found"


# --- complete -------------------------------------------------------------------------------------


@both_backends
async def test_complete_without_a_body_toggles(client, ann) -> None:
    task = await create_task(client, ann, title="Toggle", description="d")
    url = f"{ann.tasks_url}/{task['id']}/complete"
    previous = task
    for expected in (True, False, True):
        response = await client.patch(url, headers=ann.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["completed"] is expected
        assert (body["title"], body["description"], body["created_at"]) == ("Toggle", "d", task["created_at"])
        assert utc_timestamp(body["updated_at"]) > utc_timestamp(previous["updated_at"])
        assert await fetch_task(client, ann, task["id"]) == body
        previous = body


@both_backends
async def test_complete_with_a_value_sets_it_idempotently(client, ann) -> None:
    task = await create_task(client, ann)
    url = f"{ann.tasks_url}/{task['id']}/complete"
    for value in (True, True, False, False, True):
        response = await client.patch(url, json={"completed": value}, headers=ann.headers)
        assert response.status_code == 200, response.text
        assert response.json()["completed"] is value
        assert (await fetch_task(client, ann, task["id"]))["completed"] is value


async def test_complete_rejects_an_invalid_body(client, ann, subtests) -> None:
    task = await create_task(client, ann)
    url = f"{ann.tasks_url}/{task['id']}/complete"
    for body, field in [
        ({"completed": "yes"}, "completed"),
        ({"completed": 1}, "completed"),
        ({"completed": None}, "completed"),
        ({"completed": True, "title": "sneaky"}, "title"),
        ({"done": True}, "done"),
    ]:
        with subtests.test(body=body):
            assert_error(await client.patch(url, json=body, headers=ann.headers), 400, field=field)
            assert await fetch_task(client, ann, task["id"]) == task


async def test_complete_of_an_unknown_task_is_404(client, ann) -> None:
    for body in (None, {"completed": True}):
        response = await client.patch(f"{ann.tasks_url}/424242/complete", json=body, headers=ann.headers)
        assert assert_error(response, 404)["detail"] == "Task 424242 not found"


# --- delete ---------------------------------------------------------------------------------------


@both_backends
async def test_delete_removes_the_task_once(client, ann) -> None:
    task = await create_task(client, ann, title="Doomed")
    other = await create_task(client, ann, title="Stays")
    url = f"{ann.tasks_url}/{task['id']}"
    deleted = await client.delete(url, headers=ann.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (
        assert_error(await client.get(url, headers=ann.headers), 404)["detail"]
        == f"Task {task['id']} not found"
    )
    again = await client.delete(url, headers=ann.headers)
    assert assert_error(again, 404)["detail"] == f"Task {task['id']} not found"
    for method, suffix, body in TASK_ROUTES[1:4]:
        assert_error(await client.request(method, url + suffix, json=body, headers=ann.headers), 404)
    assert await listed_tasks(client, ann) == [other]


# --- timestamps -----------------------------------------------------------------------------------


@both_backends
async def test_every_change_moves_updated_at_forward_and_never_created_at(client, ann) -> None:
    task = await create_task(client, ann)
    url = f"{ann.tasks_url}/{task['id']}"
    changes = [
        ("PUT", "", {"title": "One"}),
        ("PATCH", "", {"description": "two"}),
        ("PATCH", "/complete", None),
        ("PATCH", "/complete", {"completed": False}),
        ("PATCH", "", {"title": "Three", "completed": True}),
        ("PUT", "", {"title": "Four", "description": "four"}),
    ]
    previous = task
    for method, suffix, body in changes:
        response = await client.request(method, url + suffix, json=body, headers=ann.headers)
        assert response.status_code == 200, response.text
        current = response.json()
        assert current["created_at"] == task["created_at"]
        before, after = (utc_timestamp(stamped["updated_at"]) for stamped in (previous, current))
        assert after > before, (method, suffix, body)
        previous = current
    assert await fetch_task(client, ann, task["id"]) == previous
