"""GET /api/v1/users/{user_id}/tasks: the page envelope, filters, sorting and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from helpers import assert_error, both_backends
from sqlalchemy import insert

from todo_svc.db.models import Task

SORTS = ["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]
BASE = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def seed(engine, owner, rows: list[dict[str, Any]]) -> list[int]:
    """Insert tasks straight into the database (the API cannot make timestamps tie); their ids, in order."""
    values = [
        {
            "user_id": owner.id,
            "title": f"task {n}",
            "description": None,
            "completed": False,
            "created_at": BASE + timedelta(seconds=n),
            "updated_at": BASE + timedelta(seconds=n),
            **row,
        }
        for n, row in enumerate(rows)
    ]
    async with engine.begin() as connection:
        result = await connection.execute(
            insert(Task).returning(Task.id, sort_by_parameter_order=True), values
        )
        return list(result.scalars())


async def page(client, account, **params: Any) -> dict[str, Any]:
    response = await client.get(account.tasks_url, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "total", "limit", "offset", "next_cursor"}
    return body


def ids(body: dict[str, Any]) -> list[int]:
    return [item["id"] for item in body["items"]]


@both_backends
async def test_list_envelope_and_defaults(client, ann) -> None:
    created = []
    for title in ("first", "second", "third"):
        response = await client.post(ann.tasks_url, json={"title": title}, headers=ann.headers)
        created.append(response.json())
    body = await page(client, ann)
    assert body == {
        "items": created[::-1],
        "total": 3,
        "limit": 50,
        "offset": 0,
        "next_cursor": None,
    }  # newest
    assert body == await page(client, ann, sort="-created_at", limit=50, offset=0)


@both_backends
async def test_list_of_a_user_without_tasks_is_empty(client, ann) -> None:
    assert await page(client, ann) == {"items": [], "total": 0, "limit": 50, "offset": 0, "next_cursor": None}


@both_backends
async def test_default_limit_is_50_and_limit_bounds_are_inclusive(client, engine, ann) -> None:
    seeded = await seed(engine, ann, [{} for _ in range(101)])
    newest_first = seeded[::-1]
    default = await page(client, ann)
    assert (len(default["items"]), default["total"], default["limit"]) == (50, 101, 50)
    assert ids(default) == newest_first[:50]
    one = await page(client, ann, limit=1)
    assert (ids(one), one["total"], one["limit"]) == (newest_first[:1], 101, 1)
    hundred = await page(client, ann, limit=100)
    assert (ids(hundred), hundred["total"], hundred["limit"]) == (newest_first[:100], 101, 100)
    rest = await page(client, ann, limit=100, offset=100)
    assert (ids(rest), rest["total"], rest["offset"]) == (newest_first[100:], 101, 100)


@both_backends
async def test_total_counts_every_match_whatever_the_page(client, engine, ann, subtests) -> None:
    rows = [{"completed": n % 3 == 0, "title": f"Item {n}"} for n in range(6)]
    seeded = await seed(engine, ann, rows)
    done_ids = [task_id for task_id, row in zip(seeded, rows, strict=True) if row["completed"]]
    for offset, limit in [(0, 6), (5, 50), (6, 50), (1000, 10), (4, 2), (2, 1), (1, 1)]:
        with subtests.test(offset=offset, limit=limit):
            everything = await page(client, ann, offset=offset, limit=limit)
            assert everything["total"] == 6
            assert ids(everything) == seeded[::-1][offset : offset + limit]
            assert (everything["limit"], everything["offset"]) == (limit, offset)
            done = await page(client, ann, completed="true", offset=offset, limit=limit)
            assert (ids(done), done["total"]) == (done_ids[::-1][offset : offset + limit], 2)
            matching = await page(client, ann, q="item", completed="false", offset=offset, limit=limit)
            assert matching["total"] == 4


# Ties in every column: created_at (rows 0/2, 1/5), updated_at (0/1, 3/5), title (0/2, 1/4).
ORDER_ROWS = [
    {"title": "pear", "created_at": BASE + timedelta(seconds=2), "updated_at": BASE + timedelta(seconds=5)},
    {"title": "apple", "created_at": BASE, "updated_at": BASE + timedelta(seconds=5)},
    {"title": "pear", "created_at": BASE + timedelta(seconds=2), "updated_at": BASE + timedelta(seconds=1)},
    {"title": "fig", "created_at": BASE + timedelta(seconds=1), "updated_at": BASE + timedelta(seconds=3)},
    {"title": "apple", "created_at": BASE + timedelta(seconds=3), "updated_at": BASE + timedelta(seconds=6)},
    {"title": "kiwi", "created_at": BASE, "updated_at": BASE + timedelta(seconds=3)},
]


def expected_order(seeded: list[int], sort: str) -> list[int]:
    column = sort.lstrip("-")
    keyed = sorted(zip(seeded, ORDER_ROWS, strict=True), key=lambda pair: (pair[1][column], pair[0]))
    ordered = [task_id for task_id, _ in keyed]
    return ordered[::-1] if sort.startswith("-") else ordered


@both_backends
async def test_each_sort_orders_with_ties_broken_by_id(client, engine, ann, subtests) -> None:
    seeded = await seed(engine, ann, ORDER_ROWS)
    for sort in SORTS:
        with subtests.test(sort=sort):
            expected = expected_order(seeded, sort)
            body = await page(client, ann, sort=sort)
            assert ids(body) == expected
            assert body["total"] == len(ORDER_ROWS)
            paged: list[int] = []
            for offset in range(0, len(ORDER_ROWS), 4):  # pages never skip or repeat a task, ties included
                paged += ids(await page(client, ann, sort=sort, limit=4, offset=offset))
            assert paged == expected


@both_backends
async def test_default_sort_is_newest_first_with_ties_broken_by_id(client, engine, ann) -> None:
    seeded = await seed(engine, ann, ORDER_ROWS)
    assert ids(await page(client, ann)) == expected_order(seeded, "-created_at")


@both_backends
async def test_sort_by_updated_at_follows_changes(client, ann) -> None:
    tasks = [
        (await client.post(ann.tasks_url, json={"title": t}, headers=ann.headers)).json()
        for t in ("a", "b", "c")
    ]
    await client.patch(f"{ann.tasks_url}/{tasks[0]['id']}", json={"title": "a2"}, headers=ann.headers)
    assert ids(await page(client, ann, sort="-updated_at")) == [
        tasks[0]["id"],
        tasks[2]["id"],
        tasks[1]["id"],
    ]
    assert ids(await page(client, ann, sort="updated_at")) == [tasks[1]["id"], tasks[2]["id"], tasks[0]["id"]]
    assert ids(await page(client, ann, sort="created_at")) == [task["id"] for task in tasks]


@both_backends
async def test_completed_filter(client, engine, ann) -> None:
    rows = [{"completed": flag} for flag in (True, False, False, True, False)]
    seeded = await seed(engine, ann, rows)
    for value, flag in (("true", True), ("false", False)):
        body = await page(client, ann, completed=value)
        wanted = [i for i, row in zip(seeded, rows, strict=True) if row["completed"] is flag][::-1]
        assert ids(body) == wanted
        assert body["total"] == len(wanted)
        assert all(item["completed"] is flag for item in body["items"])
    assert (await page(client, ann))["total"] == 5


@both_backends
async def test_q_is_a_case_insensitive_substring_of_title_or_description(client, engine, ann) -> None:
    rows = [
        {"title": "Buy MILK", "description": None},
        {"title": "Call mom", "description": "ask about the milkman"},
        {"title": "Water plants", "description": "not the m-i-l-k"},
        {"title": "mil", "description": "k"},
    ]
    seeded = await seed(engine, ann, rows)
    for q in ("milk", "MILK", "Milk", "mIlK"):
        body = await page(client, ann, q=q)
        assert sorted(ids(body)) == seeded[:2], q
        assert body["total"] == 2
    assert ids(await page(client, ann, q="ASK ABOUT")) == [seeded[1]]
    assert ids(await page(client, ann, q="milk", completed="true")) == []
    assert ids(await page(client, ann, q="nothing like this")) == []
    assert len(ids(await page(client, ann, q=""))) == 4


@both_backends
async def test_null_is_a_word_in_q_and_no_filter_in_completed(client, engine, ann) -> None:
    seeded = await seed(engine, ann, [{"title": "null pointer"}, {"title": "done", "completed": True}])
    assert ids(await page(client, ann, q="null")) == [seeded[0]]
    assert sorted(ids(await page(client, ann, completed="null"))) == seeded


LITERAL_TITLES = [
    "100% done",
    "100 done",
    "a_b",
    "axb",
    "a/b",
    "ab",
    "back\\slash",
    "backslash",
    "it's",
    "its",
]
LITERAL_QUERIES = [
    ("100%", ["100% done"]),
    ("%", ["100% done"]),
    ("% d", ["100% done"]),
    ("_", ["a_b"]),
    ("a_b", ["a_b"]),
    ("/", ["a/b"]),
    ("a/b", ["a/b"]),
    ("\\", ["back\\slash"]),
    ("k\\s", ["back\\slash"]),
    ("'", ["it's"]),
]


@both_backends
async def test_q_matches_wildcards_and_escapes_literally(client, engine, ann, subtests) -> None:
    await seed(engine, ann, [{"title": title} for title in LITERAL_TITLES])
    for q, matches in LITERAL_QUERIES:
        with subtests.test(q=q):
            body = await page(client, ann, q=q)
            assert [item["title"] for item in body["items"]] == matches
            assert body["total"] == len(matches)


@both_backends
async def test_q_matches_wildcards_literally_in_descriptions_too(client, engine, ann, subtests) -> None:
    seeded = await seed(engine, ann, [{"title": "Task", "description": title} for title in LITERAL_TITLES])
    by_description = dict(zip(LITERAL_TITLES, seeded, strict=True))
    for q, matches in LITERAL_QUERIES:
        with subtests.test(q=q):
            assert sorted(ids(await page(client, ann, q=q))) == sorted(by_description[m] for m in matches)


async def test_invalid_query_parameters_are_400(client, ann, subtests) -> None:
    await client.post(ann.tasks_url, json={"title": "Still here"}, headers=ann.headers)
    for name, value in [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "-1"),
        ("limit", "ten"),
        ("limit", "1.5"),
        ("offset", "-1"),
        ("offset", "x"),
        ("offset", "99999999999999999999"),
        ("sort", "bogus"),
        ("sort", "+title"),
        ("sort", "id"),
        ("sort", "description"),
        ("sort", "title;DROP TABLE tasks"),
        ("completed", "maybe"),
        ("completed", "yes please"),
    ]:
        with subtests.test(name=name, value=value):
            response = await client.get(ann.tasks_url, params={name: value}, headers=ann.headers)
            assert_error(response, 400, field=name)
    assert (await page(client, ann))["total"] == 1
