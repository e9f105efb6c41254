"""The caller's account over HTTP: GET and DELETE /api/v1/users/me, and what a deleted account's
still-valid token can no longer reach."""

from __future__ import annotations

from helpers import assert_error, assert_token_pair, assert_user, bearer, both_backends, count_rows

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"


@both_backends
async def test_get_me_returns_the_callers_account(client, ann, bob) -> None:
    as_ann = await client.get(ME, headers=ann.headers)
    as_bob = await client.get(ME, headers=bob.headers)

    assert as_ann.status_code == 200, as_ann.text
    assert as_bob.status_code == 200, as_bob.text
    assert_user(as_ann.json(), ann.email)
    assert_user(as_bob.json(), bob.email)
    assert as_ann.json()["id"] == ann.id
    assert as_bob.json()["id"] == bob.id
    assert as_ann.headers["cache-control"] == "no-store"


@both_backends
async def test_delete_me_removes_the_account_and_its_tasks(client, register, engine) -> None:
    bob = await register("bob@example.org")
    ann = await register("ann@example.org")  # the newest account: its id is the highest
    for owner, title in ((ann, "one"), (ann, "two"), (bob, "bob's")):
        created = await client.post(owner.tasks_url, json={"title": title}, headers=owner.headers)
        assert created.status_code == 201, created.text

    deleted = await client.delete(ME, headers=ann.headers)

    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    # The token has not expired, but its account is gone.
    assert_error(await client.get(ME, headers=ann.headers), 401)
    assert_error(await client.delete(ME, headers=ann.headers), 401)
    assert_error(await client.post(ann.tasks_url, json={"title": "x"}, headers=ann.headers), 401)
    assert await count_rows(engine, "SELECT count(*) FROM users WHERE id = :id", id=ann.id) == 0
    assert await count_rows(engine, "SELECT count(*) FROM tasks WHERE user_id = :id", id=ann.id) == 0
    # Nobody else's data goes with it.
    assert await count_rows(engine, "SELECT count(*) FROM tasks WHERE user_id = :id", id=bob.id) == 1
    assert (await client.get(ME, headers=bob.headers)).status_code == 200

    login = await client.post(LOGIN, json={"email": ann.email, "password": ann.password})
    assert_error(login, 401)

    again = await client.post(REGISTER, json={"email": ann.email, "password": "a brand new password"})
    assert again.status_code == 201, again.text
    assert_token_pair(again.json(), ann.email)
    fresh = await client.get(ME, headers=bearer(again.json()["access_token"]))
    assert fresh.status_code == 200
    assert fresh.json() == again.json()["user"]
    new_password = await client.post(LOGIN, json={"email": ann.email, "password": "a brand new password"})
    assert new_password.status_code == 200, new_password.text
    assert_error(await client.post(LOGIN, json={"email": ann.email, "password": ann.password}), 401)


@both_backends
async def test_a_deleted_accounts_token_never_opens_a_later_account(client, register) -> None:
    """Ids of deleted accounts must not be handed out again: live tokens still carry them."""
    await register("bob@example.org")
    ann = await register("ann@example.org")  # the newest account: its id is the highest
    assert (await client.delete(ME, headers=ann.headers)).status_code == 204

    carol = await register("carol@example.org")
    created = await client.post(carol.tasks_url, json={"title": "carol's secret"}, headers=carol.headers)
    assert created.status_code == 201, created.text

    stale_me = await client.get(ME, headers=ann.headers)
    stale_tasks = await client.get(carol.tasks_url, headers=ann.headers)

    assert_error(stale_me, 401)
    assert stale_tasks.status_code in (401, 403), stale_tasks.text
    assert "carol" not in stale_me.text + stale_tasks.text
