"""The task routes under /api/v1/users/{user_id}/tasks and their legacy twins (listing: test_task_list.py)."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from conftest import concurrently

both_backends = pytest.mark.backends("postgresql", "sqlite")

# The routes that address one task, with a valid body where one is needed.
TASK_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PUT", "", {"title": "Replaced", "description": "new", "completed": True}),
    ("PATCH", "", {"title": "Patched"}),
    ("PATCH", "/complete", None),
    ("DELETE", "", None),
]


def ts(value: str) -> datetime:
    """A timestamp of the API, which must carry an explicit UTC offset."""
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def assert_error(response: httpx.Response, status: int, *, field: str | None = None) -> dict[str, Any]:
    """The contract's error body; `field` must be named among the validation errors."""
    assert response.status_code == status, response.text
    body = response.json()
    assert {"error", "detail", "status_code", "timestamp", "request_id"} <= set(body), body
    assert body["status_code"] == status
    assert body["error"] == HTTPStatus(status).phrase
    if field is not None:
        assert field in [error["field"] for error in body.get("errors", [])], body
    return body


async def create(client, account, **fields: Any) -> dict[str, Any]:
    fields.setdefault("title", "A task")
    response = await client.post(account.tasks_url, json=fields, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def fetch(client, account, task_id: int) -> dict[str, Any]:
    response = await client.get(f"{account.tasks_url}/{task_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def listed(client, account) -> list[dict[str, Any]]:
    response = await client.get(account.tasks_url, params={"limit": 100}, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


# --- create ---------------------------------------------------------------------------------------


@both_backends
async def test_create_returns_the_task_and_its_location(client, ann) -> None:
    response = await client.post(ann.tasks_url, json={"title": "  Buy milk \t"}, headers=ann.headers)
    assert response.status_code == 201, response.text
    task = response.json()
    assert set(task) == {"id", "user_id", "title", "description", "completed", "created_at", "updated_at"}
    assert task["title"] == "Buy milk"
    assert task["user_id"] == ann.id
    assert task["description"] is None
    assert task["completed"] is False
    assert isinstance(task["id"], int)
    assert task["id"] > 0
    assert ts(task["created_at"]) <= ts(task["updated_at"])
    assert response.headers["location"] == f"{ann.tasks_url}/{task['id']}"
    assert (await client.get(response.headers["location"], headers=ann.headers)).json() == task


@both_backends
async def test_create_takes_description_and_completed(client, ann) -> None:
    task = await create(client, ann, title="Call mom", description="About Sunday", completed=True)
    assert (task["description"], task["completed"]) == ("About Sunday", True)
    explicit = await create(client, ann, title="Plain", description=None, completed=False)
    assert (explicit["description"], explicit["completed"]) == (None, False)
    assert await fetch(client, ann, task["id"]) == task


BAD_CREATE_BODIES: list[tuple[dict[str, Any], str]] = [
    # server-owned and unknown fields are rejected, never dropped
    ({"title": "T", "id": 999}, "id"),
    ({"title": "T", "user_id": 999}, "user_id"),
    ({"title": "T", "created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    ({"title": "T", "updated_at": None}, "updated_at"),
    ({"title": "T", "x": 1}, "x"),
    # title: required, 1 to 255 characters once trimmed; description at most 10,000
    ({"description": "no title"}, "title"),
    ({"title": ""}, "title"),
    ({"title": " "}, "title"),
    ({"title": " \t\n "}, "title"),
    ({"title": "x" * 256}, "title"),
    ({"title": "  " + "x" * 256 + "  "}, "title"),
    ({"title": None}, "title"),
    ({"title": "T", "description": "d" * 10_001}, "description"),
    # wrong types, never coerced
    ({"title": "T", "completed": "true"}, "completed"),
    ({"title": "T", "completed": 1}, "completed"),
    ({"title": "T", "completed": None}, "completed"),
    ({"title": 5}, "title"),
    ({"title": ["a"]}, "title"),
    ({"title": "T", "description": 5}, "description"),
    # NUL characters
    ({"title": "a\x00b"}, "title"),
    ({"title": "T", "description": "a\x00b"}, "description"),
]


async def test_create_rejects_an_invalid_body_naming_the_field(client, ann, subtests) -> None:
    for body, field in BAD_CREATE_BODIES:
        with subtests.test(body=str(body)[:60]):
            response = await client.post(ann.tasks_url, json=body, headers=ann.headers)
            assert_error(response, 400, field=field)
            assert await listed(client, ann) == []


async def test_title_of_255_characters_and_description_of_10000_are_accepted(client, ann) -> None:
    task = await create(client, ann, title="  " + "t" * 255 + " ", description="d" * 10_000)
    assert task["title"] == "t" * 255
    assert task["description"] == "d" * 10_000
    assert await fetch(client, ann, task["id"]) == task


async def test_nul_characters_are_rejected_on_every_write(client, ann) -> None:
    task = await create(client, ann)
    url = f"{ann.tasks_url}/{task['id']}"
    for field in ("title", "description"):
        assert_error(await client.patch(url, json={field: "\x00"}, headers=ann.headers), 400, field=field)
        replaced = await client.put(url, json={"title": "T", field: "x\x00"}, headers=ann.headers)
        assert_error(replaced, 400, field=field)
    assert await fetch(client, ann, task["id"]) == task


async def test_create_rejects_a_body_that_is_not_a_json_object(client, ann, subtests) -> None:
    headers = {**ann.headers, "Content-Type": "application/json"}
    for raw in (
        b'{"title": "T"',
        b"not json",
        b"",
        b'["title"]',
        b'"T"',
        b"null",
        b"{'title': 'T'}",
        b"\xff",
    ):
        with subtests.test(raw=raw):
            assert_error(await client.post(ann.tasks_url, content=raw, headers=headers), 400)
            assert await listed(client, ann) == []


VERBATIM_TITLES = [
    "Robert'); DROP TABLE tasks;--",
    "' OR '1'='1' --",
    '"; DELETE FROM users WHERE 1=1; --',
    "\U0001f469\u200d\U0001f4bb ship it \U0001f680",  # emoji, one of them a ZWJ sequence
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",  # Hebrew, right to left
    "\u0645\u0631\u062d\u0628\u0627 \u200f\u0628\u0627\u0644\u0639\u0627\u0644\u0645",  # Arabic and an RLM
    "Cafe\u0301 e\u0308 a\u0323\u0302",  # combining characters, not normalised
    "<script>alert(1)</script>",
    "back\\slash and 'quotes' and \"double\"",
]


async def test_titles_are_stored_and_returned_verbatim(client, ann, subtests) -> None:
    stored = []
    for title in VERBATIM_TITLES:
        with subtests.test(title=title):
            task = await create(client, ann, title=title, description=title)
            assert (task["title"], task["description"]) == (title, title)
            assert await fetch(client, ann, task["id"]) == task
            stored.append(task)
    assert sorted(await listed(client, ann), key=lambda task: task["id"]) == stored


# --- get ------------------------------------------------------------------------------------------


async def test_get_unknown_task_is_404(client, ann) -> None:
    task = await create(client, ann)
    missing = task["id"] + 1000
    response = await client.get(f"{ann.tasks_url}/{missing}", headers=ann.headers)
    assert assert_error(response, 404)["detail"] == f"Task {missing} not found"


async def test_out_of_range_ids_are_400_or_404_never_500(client, ann, subtests) -> None:
    task = await create(client, ann)
    for task_id in ("0", "-1", "9223372036854775808", "99999999999999999999"):
        for method, suffix, body in TASK_ROUTES:
            with subtests.test(method=method, suffix=suffix, task_id=task_id):
                url = f"{ann.tasks_url}/{task_id}{suffix}"
                response = await client.request(method, url, json=body, headers=ann.headers)
                assert response.status_code in (400, 404), response.text
                assert_error(response, response.status_code)
    assert await listed(client, ann) == [task]


async def test_a_non_integer_id_matches_no_route(client, ann, subtests) -> None:
    for task_id in ("abc", "1.5", "1e3", "%20", "0x10"):
        for method, suffix, body in TASK_ROUTES:
            with subtests.test(method=method, suffix=suffix, task_id=task_id):
                url = f"{ann.tasks_url}/{task_id}{suffix}"
                assert_error(await client.request(method, url, json=body, headers=ann.headers), 404)


# --- PUT ------------------------------------------------------------------------------------------


@both_backends
async def test_put_replaces_the_whole_task(client, ann) -> None:
    task = await create(client, ann, title="Old", description="old text", completed=True)
    url = f"{ann.tasks_url}/{task['id']}"
    response = await client.put(url, json={"title": "  New  "}, headers=ann.headers)
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert (replaced["id"], replaced["user_id"]) == (task["id"], ann.id)
    assert (replaced["title"], replaced["description"], replaced["completed"]) == ("New", None, False)
    assert replaced["created_at"] == task["created_at"]
    assert ts(replaced["updated_at"]) > ts(task["updated_at"])
    assert await fetch(client, ann, task["id"]) == replaced

    full = await client.put(
        url, json={"title": "N", "description": "D", "completed": True}, headers=ann.headers
    )
    assert (full.json()["title"], full.json()["description"], full.json()["completed"]) == ("N", "D", True)


async def test_put_rejects_an_incomplete_or_invalid_body(client, ann, subtests) -> None:
    task = await create(client, ann, description="keep", completed=True)
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
            assert await fetch(client, ann, task["id"]) == task


async def test_put_of_an_unknown_task_is_404(client, ann) -> None:
    response = await client.put(f"{ann.tasks_url}/424242", json={"title": "T"}, headers=ann.headers)
    assert assert_error(response, 404)["detail"] == "Task 424242 not found"
    assert await listed(client, ann) == []


# --- PATCH ----------------------------------------------------------------------------------------


@both_backends
async def test_patch_changes_only_the_given_fields(client, ann) -> None:
    task = await create(client, ann, title="Title", description="Text", completed=False)
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
        assert ts(body["updated_at"]) > ts(expected["updated_at"])
        expected["updated_at"] = body["updated_at"]
        assert await fetch(client, ann, task["id"]) == body

    everything = await client.patch(
        url, json={"title": "All", "description": "at once", "completed": False}, headers=ann.headers
    )
    assert (everything.json()["title"], everything.json()["description"]) == ("All", "at once")
    assert everything.json()["completed"] is False


@both_backends
async def test_empty_patch_changes_nothing(client, ann) -> None:
    task = await create(client, ann, title="Same", description="Kept", completed=True)
    response = await client.patch(f"{ann.tasks_url}/{task['id']}", json={}, headers=ann.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {key: value for key, value in body.items() if key != "updated_at"} == {
        key: value for key, value in task.items() if key != "updated_at"
    }
    assert ts(body["updated_at"]) >= ts(task["updated_at"])


async def test_patch_rejects_invalid_values(client, ann, subtests) -> None:
    task = await create(client, ann, description="keep")
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
            assert await fetch(client, ann, task["id"]) == task


async def test_patch_of_an_unknown_task_is_404(client, ann) -> None:
    response = await client.patch(f"{ann.tasks_url}/424242", json={"completed": True}, headers=ann.headers)
    assert assert_error(response, 404)["detail"] == "Task 424242 not found"


# --- complete -------------------------------------------------------------------------------------


@both_backends
async def test_complete_without_a_body_toggles(client, ann) -> None:
    task = await create(client, ann, title="Toggle", description="d")
    url = f"{ann.tasks_url}/{task['id']}/complete"
    previous = task
    for expected in (True, False, True):
        response = await client.patch(url, headers=ann.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["completed"] is expected
        assert (body["title"], body["description"], body["created_at"]) == ("Toggle", "d", task["created_at"])
        assert ts(body["updated_at"]) > ts(previous["updated_at"])
        assert await fetch(client, ann, task["id"]) == body
        previous = body


@both_backends
async def test_complete_with_a_value_sets_it_idempotently(client, ann) -> None:
    task = await create(client, ann)
    url = f"{ann.tasks_url}/{task['id']}/complete"
    for value in (True, True, False, False, True):
        response = await client.patch(url, json={"completed": value}, headers=ann.headers)
        assert response.status_code == 200, response.text
        assert response.json()["completed"] is value
        assert (await fetch(client, ann, task["id"]))["completed"] is value


async def test_complete_rejects_an_invalid_body(client, ann, subtests) -> None:
    task = await create(client, ann)
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
            assert await fetch(client, ann, task["id"]) == task


async def test_complete_of_an_unknown_task_is_404(client, ann) -> None:
    for body in (None, {"completed": True}):
        response = await client.patch(f"{ann.tasks_url}/424242/complete", json=body, headers=ann.headers)
        assert assert_error(response, 404)["detail"] == "Task 424242 not found"


# --- delete ---------------------------------------------------------------------------------------


@both_backends
async def test_delete_removes_the_task_once(client, ann) -> None:
    task = await create(client, ann, title="Doomed")
    other = await create(client, ann, title="Stays")
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
    assert await listed(client, ann) == [other]


# --- timestamps -----------------------------------------------------------------------------------


@both_backends
async def test_every_change_moves_updated_at_forward_and_never_created_at(client, ann) -> None:
    task = await create(client, ann)
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
        assert ts(current["updated_at"]) > ts(previous["updated_at"]), (method, suffix, body)
        previous = current
    assert await fetch(client, ann, task["id"]) == previous


# --- isolation ------------------------------------------------------------------------------------

ALL_ROUTES = [("GET", "", None), ("POST", "", {"title": "Intruder"})] + [
    (method, "/{id}" + suffix, body) for method, suffix, body in TASK_ROUTES
]


async def test_another_users_path_is_403_and_changes_nothing(client, ann, bob, subtests) -> None:
    task = await create(client, ann, title="Ann's", description="private")
    for method, suffix, body in ALL_ROUTES:
        with subtests.test(method=method, suffix=suffix):
            url = ann.tasks_url + suffix.format(id=task["id"])
            response = await client.request(method, url, json=body, headers=bob.headers)
            assert_error(response, 403)
            assert "private" not in response.text
            assert await listed(client, ann) == [task]
            assert await listed(client, bob) == []


async def test_another_users_task_under_ones_own_path_is_404(client, ann, bob, subtests) -> None:
    task = await create(client, ann, title="Ann's", description="private")
    await create(client, bob, title="Bob's")
    for method, suffix, body in TASK_ROUTES:
        with subtests.test(method=method, suffix=suffix):
            url = f"{bob.tasks_url}/{task['id']}{suffix}"
            response = await client.request(method, url, json=body, headers=bob.headers)
            assert assert_error(response, 404)["detail"] == f"Task {task['id']} not found"
            assert "private" not in response.text
            assert await listed(client, ann) == [task]


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
    task = await create(client, ann)
    for method, suffix, body in BEFORE_VALIDATION:
        with subtests.test(method=method, suffix=suffix, body=body):
            url = ann.tasks_url + suffix.format(id=task["id"])
            assert_error(await client.request(method, url, headers=bob.headers, **body_of(body)), 403)
            for user_id in ("99999999999999999999", str(ann.id + bob.id + 100)):
                elsewhere = url.replace(f"/{ann.id}/", f"/{user_id}/")
                assert_error(
                    await client.request(method, elsewhere, headers=bob.headers, **body_of(body)), 403
                )
    assert await listed(client, ann) == [task]


async def test_without_a_valid_token_every_route_is_401(client, ann, subtests) -> None:
    task = await create(client, ann)
    for authorization in (None, "Bearer not-a-jwt", f"Basic {ann.token}", ann.token):
        headers = {"Authorization": authorization} if authorization else {}
        for method, suffix, body in [*ALL_ROUTES, *BEFORE_VALIDATION]:
            with subtests.test(authorization=str(authorization)[:12], method=method, suffix=suffix):
                for user_id in (ann.id, 424242):
                    url = f"/api/v1/users/{user_id}/tasks" + suffix.format(id=task["id"])
                    response = await client.request(method, url, headers=headers, **body_of(body))
                    assert_error(response, 401)
                    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await listed(client, ann) == [task]


@both_backends
async def test_lists_never_contain_another_users_tasks(client, ann, bob) -> None:
    ann_tasks = [await create(client, ann, title=f"shared word {n}") for n in range(3)]
    bob_tasks = [await create(client, bob, title=f"shared word {n}", completed=True) for n in range(2)]
    for account, own in ((ann, ann_tasks), (bob, bob_tasks)):
        for params in ({}, {"q": "shared"}, {"completed": "true"}, {"sort": "title"}):
            response = await client.get(account.tasks_url, params=params, headers=account.headers)
            page = response.json()
            expected = [t for t in own if params.get("completed") != "true" or t["completed"]]
            assert sorted(item["id"] for item in page["items"]) == sorted(t["id"] for t in expected)
            assert page["total"] == len(expected)
            assert {item["user_id"] for item in page["items"]} <= {account.id}


# --- concurrency ----------------------------------------------------------------------------------


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
    task = await create(client, ann)
    count = 50
    responses = await toggle_concurrently(client, ann, task["id"], count)
    states = [r.json()["completed"] for r in responses]
    assert states.count(True) == states.count(False) == count // 2  # each toggle saw the one before
    final = await fetch(client, ann, task["id"])
    assert final["completed"] is (count % 2 == 1)
    assert final["created_at"] == task["created_at"]
    assert all(ts(final["updated_at"]) >= ts(r.json()["updated_at"]) for r in responses)


async def test_concurrent_changes_each_move_updated_at_forward(client, ann) -> None:
    task = await create(client, ann)
    responses = await toggle_concurrently(client, ann, task["id"], 20)
    stamps = sorted(ts(r.json()["updated_at"]) for r in responses)
    assert len(set(stamps)) == len(stamps), "two different changes left the same updated_at"
    assert stamps[0] > ts(task["updated_at"])


async def test_concurrent_patches_of_different_fields_all_apply(client, ann) -> None:
    task = await create(client, ann)
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
    final = await fetch(client, ann, task["id"])
    for field in ("title", "description", "completed"):
        assert final[field] in [body[field] for body in bodies if field in body]
    latest = max(responses, key=lambda r: ts(r.json()["updated_at"]))
    assert ts(final["updated_at"]) == ts(latest.json()["updated_at"])


# --- legacy routes --------------------------------------------------------------------------------


def assert_deprecated(response: httpx.Response, successor: str) -> None:
    assert response.headers.get("deprecation") == "true", (response.status_code, dict(response.headers))
    link = response.headers.get("link", "")
    target = re.fullmatch(r'<([^>]+)>\s*;\s*rel="?successor-version"?', link)
    assert target, link
    assert target.group(1) == successor


async def test_legacy_routes_behave_the_same_and_announce_their_successor(client, ann) -> None:
    old, new = f"/api/{ann.id}/tasks", ann.tasks_url

    created = await client.post(old, json={"title": "  Legacy  ", "description": "d"}, headers=ann.headers)
    assert created.status_code == 201, created.text
    assert_deprecated(created, new)
    task = created.json()
    assert {key: task[key] for key in ("title", "description", "completed", "user_id")} == {
        "title": "Legacy",
        "description": "d",
        "completed": False,
        "user_id": ann.id,
    }
    assert (await client.get(created.headers["location"], headers=ann.headers)).json() == task
    item = f"/{task['id']}"

    listing = await client.get(old, params={"q": "legacy"}, headers=ann.headers)
    assert_deprecated(listing, new)
    assert listing.json() == {"items": [task], "total": 1, "limit": 50, "offset": 0}

    got = await client.get(old + item, headers=ann.headers)
    assert_deprecated(got, new + item)
    assert got.json() == task

    replaced = await client.put(old + item, json={"title": "Put"}, headers=ann.headers)
    assert_deprecated(replaced, new + item)
    assert (replaced.json()["title"], replaced.json()["description"]) == ("Put", None)

    patched = await client.patch(old + item, json={"description": "again"}, headers=ann.headers)
    assert_deprecated(patched, new + item)
    assert (patched.json()["title"], patched.json()["description"]) == ("Put", "again")

    for expected, body in ((True, None), (False, None), (True, {"completed": True})):
        completed = await client.patch(f"{old}{item}/complete", json=body, headers=ann.headers)
        assert_deprecated(completed, f"{new}{item}/complete")
        assert completed.json()["completed"] is expected

    assert await fetch(client, ann, task["id"]) == completed.json()

    deleted = await client.delete(old + item, headers=ann.headers)
    assert deleted.status_code == 204
    assert_deprecated(deleted, new + item)
    assert_error(await client.get(new + item, headers=ann.headers), 404)


async def test_canonical_routes_are_not_marked_deprecated(client, ann) -> None:
    task = await create(client, ann)
    for response in (
        await client.get(ann.tasks_url, headers=ann.headers),
        await client.get(f"{ann.tasks_url}/{task['id']}", headers=ann.headers),
        await client.get(f"{ann.tasks_url}/424242", headers=ann.headers),
        await client.get(ann.tasks_url),
    ):
        assert "deprecation" not in response.headers
        assert "link" not in response.headers


async def test_legacy_errors_match_and_are_marked_deprecated(client, ann, bob) -> None:
    old, new = f"/api/{ann.id}/tasks", ann.tasks_url
    task = await create(client, ann)
    item = f"/{task['id']}"

    invalid = await client.post(old, json={"title": ""}, headers=ann.headers)
    assert_error(invalid, 400, field="title")
    assert_deprecated(invalid, new)

    missing = await client.get(f"{old}/424242", headers=ann.headers)
    assert assert_error(missing, 404)["detail"] == "Task 424242 not found"
    assert_deprecated(missing, f"{new}/424242")

    forbidden = await client.patch(old + item, json={"title": "x"}, headers=bob.headers)
    assert_error(forbidden, 403)
    assert_deprecated(forbidden, new + item)

    unauthenticated = await client.delete(old + item)
    assert_error(unauthenticated, 401)
    assert_deprecated(unauthenticated, new + item)

    assert await fetch(client, ann, task["id"]) == task
