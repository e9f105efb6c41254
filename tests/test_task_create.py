"""Creating a task and reading one back: the stored fields, the body rules (strict, never coerced), text
kept verbatim, and ids that are out of range or not integers."""

from __future__ import annotations

from typing import Any

from helpers import (
    TASK_ROUTES,
    assert_error,
    both_backends,
    create_task,
    fetch_task,
    listed_tasks,
    utc_timestamp,
)

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
    assert utc_timestamp(task["created_at"]) <= utc_timestamp(task["updated_at"])
    assert response.headers["location"] == f"{ann.tasks_url}/{task['id']}"
    assert (await client.get(response.headers["location"], headers=ann.headers)).json() == task


@both_backends
async def test_create_takes_description_and_completed(client, ann) -> None:
    task = await create_task(client, ann, title="Call mom", description="About Sunday", completed=True)
    assert (task["description"], task["completed"]) == ("About Sunday", True)
    explicit = await create_task(client, ann, title="Plain", description=None, completed=False)
    assert (explicit["description"], explicit["completed"]) == (None, False)
    assert await fetch_task(client, ann, task["id"]) == task


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
            assert await listed_tasks(client, ann) == []


async def test_title_of_255_characters_and_description_of_10000_are_accepted(client, ann) -> None:
    task = await create_task(client, ann, title="  " + "t" * 255 + " ", description="d" * 10_000)
    assert task["title"] == "t" * 255
    assert task["description"] == "d" * 10_000
    assert await fetch_task(client, ann, task["id"]) == task


async def test_nul_characters_are_rejected_on_every_write(client, ann) -> None:
    task = await create_task(client, ann)
    url = f"{ann.tasks_url}/{task['id']}"
    for field in ("title", "description"):
        assert_error(await client.patch(url, json={field: "\x00"}, headers=ann.headers), 400, field=field)
        replaced = await client.put(url, json={"title": "T", field: "x\x00"}, headers=ann.headers)
        assert_error(replaced, 400, field=field)
    assert await fetch_task(client, ann, task["id"]) == task


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
            assert await listed_tasks(client, ann) == []


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
            task = await create_task(client, ann, title=title, description=title)
            assert (task["title"], task["description"]) == (title, title)
            assert await fetch_task(client, ann, task["id"]) == task
            stored.append(task)
    assert sorted(await listed_tasks(client, ann), key=lambda task: task["id"]) == stored


# --- get ------------------------------------------------------------------------------------------


async def test_get_unknown_task_is_404(client, ann) -> None:
    task = await create_task(client, ann)
    missing = task["id"] + 1000
    response = await client.get(f"{ann.tasks_url}/{missing}", headers=ann.headers)
    assert assert_error(response, 404)["detail"] == f"Task {missing} not found"


async def test_out_of_range_ids_are_400_or_404_never_500(client, ann, subtests) -> None:
    task = await create_task(client, ann)
    for task_id in ("0", "-1", "9223372036854775808", "99999999999999999999"):
        for method, suffix, body in TASK_ROUTES:
            with subtests.test(method=method, suffix=suffix, task_id=task_id):
                url = f"{ann.tasks_url}/{task_id}{suffix}"
                response = await client.request(method, url, json=body, headers=ann.headers)
                assert response.status_code in (400, 404), response.text
                assert_error(response, response.status_code)
    assert await listed_tasks(client, ann) == [task]


async def test_a_non_integer_id_matches_no_route(client, ann, subtests) -> None:
    for task_id in ("abc", "1.5", "1e3", "%20", "0x10"):
        for method, suffix, body in TASK_ROUTES:
            with subtests.test(method=method, suffix=suffix, task_id=task_id):
                url = f"{ann.tasks_url}/{task_id}{suffix}"
                assert_error(await client.request(method, url, json=body, headers=ann.headers), 404)
