"""The unversioned routes of the original design (/auth/…, /api/{user_id}/tasks…): they behave as their
/api/v1 successors, errors included, and every answer says `Deprecation: true` with a `Link` to the
successor; the canonical routes say neither."""

from __future__ import annotations

from typing import Any

from helpers import (
    PASSWORD,
    assert_deprecated,
    assert_error,
    assert_token_pair,
    bearer,
    create_task,
    fetch_task,
)
from litestar import Litestar
from litestar.testing import AsyncTestClient

ME = "/api/v1/users/me"
Client = AsyncTestClient[Litestar]


# --- auth -----------------------------------------------------------------------------------------


async def test_legacy_register_and_login_work_and_are_marked_deprecated(client) -> None:
    registered = await client.post("/auth/register", json={"email": " Old@Example.org", "password": PASSWORD})

    assert registered.status_code == 201, registered.text
    assert_token_pair(registered.json(), "old@example.org")
    assert_deprecated(registered, "/api/v1/auth/register")

    logged_in = await client.post("/auth/login", json={"email": "OLD@example.org", "password": PASSWORD})

    assert logged_in.status_code == 200, logged_in.text
    assert_token_pair(logged_in.json(), "old@example.org")
    assert_deprecated(logged_in, "/api/v1/auth/login")

    for token in (registered.json()["access_token"], logged_in.json()["access_token"]):
        me = await client.get(ME, headers=bearer(token))
        assert me.status_code == 200
        assert me.json() == registered.json()["user"]


async def test_legacy_auth_routes_point_to_their_successor(client: Client) -> None:
    credentials = {"email": "legacy@example.org", "password": "long enough pw"}
    registered = await client.post("/auth/register", json=credentials)
    assert registered.status_code == 201, registered.text
    assert_deprecated(registered, "/api/v1/auth/register")
    logged_in = await client.post("/auth/login", json=credentials)
    assert logged_in.status_code == 200, logged_in.text
    assert_deprecated(logged_in, "/api/v1/auth/login")


async def test_legacy_routes_answer_errors_like_the_canonical_ones(client, ann) -> None:
    cases = [
        ("/register", {"email": ann.email, "password": PASSWORD}, 409),
        ("/login", {"email": ann.email, "password": "not the password"}, 401),
        ("/login", {"email": "nobody@example.org", "password": PASSWORD}, 401),
        ("/register", {"email": "new@example.org", "password": 12345678}, 400),
    ]
    for path, payload, status in cases:
        legacy = await client.post(f"/auth{path}", json=payload)
        canonical = await client.post(f"/api/v1/auth{path}", json=payload)

        legacy_body = assert_error(legacy, status)
        canonical_body = assert_error(canonical, status)
        assert legacy_body["detail"] == canonical_body["detail"]
        assert legacy_body.get("errors") == canonical_body.get("errors")
        assert_deprecated(legacy, f"/api/v1/auth{path}")
        assert "deprecation" not in canonical.headers


# --- tasks ----------------------------------------------------------------------------------------


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
    assert listing.json() == {"items": [task], "total": 1, "limit": 50, "offset": 0, "next_cursor": None}

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

    assert await fetch_task(client, ann, task["id"]) == completed.json()

    deleted = await client.delete(old + item, headers=ann.headers)
    assert deleted.status_code == 204
    assert_deprecated(deleted, new + item)
    assert_error(await client.get(new + item, headers=ann.headers), 404)


async def test_legacy_task_routes_point_to_their_successor(client: Client, ann: Any) -> None:
    legacy = f"/api/{ann.id}/tasks"
    created = await client.post(legacy, json={"title": "old client"}, headers=ann.headers)
    assert created.status_code == 201, created.text
    assert_deprecated(created, ann.tasks_url)
    task_id = created.json()["id"]

    listed = await client.get(legacy, headers=ann.headers)
    assert listed.json()["total"] == 1
    assert_deprecated(listed, ann.tasks_url)
    assert_deprecated(
        await client.get(f"{legacy}/{task_id}", headers=ann.headers), f"{ann.tasks_url}/{task_id}"
    )
    completed = await client.patch(f"{legacy}/{task_id}/complete", headers=ann.headers)
    assert completed.json()["completed"] is True
    assert_deprecated(completed, f"{ann.tasks_url}/{task_id}/complete")
    missing = await client.get(f"{legacy}/999999", headers=ann.headers)
    assert_error(missing, 404)
    assert_deprecated(missing, f"{ann.tasks_url}/999999")


async def test_legacy_errors_match_and_are_marked_deprecated(client, ann, bob) -> None:
    old, new = f"/api/{ann.id}/tasks", ann.tasks_url
    task = await create_task(client, ann)
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

    assert await fetch_task(client, ann, task["id"]) == task


async def test_legacy_answers_before_the_handler_are_deprecated_too(client: Client, ann: Any) -> None:
    unauthenticated = await client.get(f"/api/{ann.id}/tasks")
    assert_error(unauthenticated, 401)
    assert_deprecated(unauthenticated, ann.tasks_url)
    invalid = await client.post("/auth/login", json={"email": ann.email})
    assert_error(invalid, 400)
    assert_deprecated(invalid, "/api/v1/auth/login")


# --- the canonical routes -------------------------------------------------------------------------


async def test_canonical_routes_are_not_deprecated(client: Client, ann: Any) -> None:
    for response in (
        await client.get(ann.tasks_url, headers=ann.headers),
        await client.post("/api/v1/auth/login", json={"email": ann.email, "password": ann.password}),
        await client.get("/health"),
    ):
        assert "deprecation" not in response.headers
        assert "link" not in response.headers


async def test_canonical_routes_are_not_marked_deprecated(client, ann) -> None:
    task = await create_task(client, ann)
    for response in (
        await client.get(ann.tasks_url, headers=ann.headers),
        await client.get(f"{ann.tasks_url}/{task['id']}", headers=ann.headers),
        await client.get(f"{ann.tasks_url}/424242", headers=ann.headers),
        await client.get(ann.tasks_url),
    ):
        assert "deprecation" not in response.headers
        assert "link" not in response.headers
