"""A client of todo-svc written against the SDK openapi-python-client generates from docs/openapi.json.

`python python_flow.py BASE_URL` drives the whole contract (auth, tasks, conditional requests, batches,
idempotent creation, the error body) through the generated package and exits 0 only if every step
behaved; tests/test_sdks.py generates the package, type-checks this file strictly and runs it.
"""

from __future__ import annotations

import sys
import uuid
from http import HTTPStatus
from typing import TypeVar

from todo_svc_client import AuthenticatedClient, Client
from todo_svc_client.api.auth import login, logout, refresh, register
from todo_svc_client.api.tasks import (
    complete_task,
    complete_tasks,
    create_task,
    create_tasks,
    delete_task,
    delete_tasks,
    get_task,
    list_task_changes,
    list_tasks,
    update_task,
)
from todo_svc_client.models import (
    CompletionSet,
    Credentials,
    DeletedCount,
    ErrorBody,
    ListTasksSort,
    RefreshRequest,
    TaskBatchComplete,
    TaskBatchCreate,
    TaskBatchDelete,
    TaskChangesOut,
    TaskCreate,
    TaskList,
    TaskOut,
    TaskPage,
    TaskPatch,
    TokenPair,
)
from todo_svc_client.types import UNSET, Response, Unset

R = TypeVar("R")
T = TypeVar("T")
MISSING_ID = 2**31


def expect(response: Response[R], status: HTTPStatus, kind: type[T]) -> T:
    """The parsed body of a response that must have this status and be of this type."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.content!r}"
    )
    parsed = response.parsed
    assert isinstance(parsed, kind), f"expected a {kind.__name__}, got {parsed!r}"
    return parsed


def expect_empty(response: Response[R], status: HTTPStatus) -> None:
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.content!r}"
    )
    assert response.parsed is None
    assert response.content == b""


def expect_error(response: Response[R], status: HTTPStatus) -> ErrorBody:
    """The error body, checked field by field as docs/api.md defines it."""
    error = expect(response, status, ErrorBody)
    assert error.status_code == status
    assert error.error == status.phrase, error.error
    assert error.detail
    assert error.request_id == response.headers["X-Request-ID"]
    assert error.timestamp.tzinfo is not None
    return error


def step(name: str) -> None:
    print(f"ok: {name}", flush=True)


def expected_order(tasks: list[TaskOut], sort: ListTasksSort) -> list[int]:
    """Ids in the order `sort` names, ties broken by id in the same direction."""
    field = sort.value.removeprefix("-")
    if field == "title":
        ordered = sorted(tasks, key=lambda task: (task.title, task.id))
    elif field == "created_at":
        ordered = sorted(tasks, key=lambda task: (task.created_at, task.id))
    else:
        ordered = sorted(tasks, key=lambda task: (task.updated_at, task.id))
    ids = [task.id for task in ordered]
    return ids[::-1] if sort.value.startswith("-") else ids


def account(public: Client, name: str) -> TokenPair:
    credentials = Credentials(email=f"{name}-{uuid.uuid4().hex[:8]}@example.org", password="long enough pw")
    created = expect(register.sync_detailed(client=public, body=credentials), HTTPStatus.CREATED, TokenPair)
    expect_error(register.sync_detailed(client=public, body=credentials), HTTPStatus.CONFLICT)
    logged_in = expect(login.sync_detailed(client=public, body=credentials), HTTPStatus.OK, TokenPair)
    assert logged_in.user.id == created.user.id
    assert logged_in.token_type == "bearer"
    wrong = Credentials(email=credentials.email, password="not the password")
    expect_error(login.sync_detailed(client=public, body=wrong), HTTPStatus.UNAUTHORIZED)
    return logged_in


def main(base_url: str) -> None:
    public = Client(base_url=base_url)
    pair = account(public, "ann")
    ann_id = pair.user.id
    ann = AuthenticatedClient(base_url=base_url, token=pair.access_token)
    bob = AuthenticatedClient(base_url=base_url, token=account(public, "bob").access_token)
    step("register, login (409 on a second register, 401 on a wrong password)")
    feed_start = expect(list_task_changes.sync_detailed(ann_id, client=ann), HTTPStatus.OK, TaskChangesOut)
    assert (feed_start.items, feed_start.deleted, feed_start.has_more) == ([], [], False)

    created: list[TaskOut] = []
    for title in ("delta", "alpha", "charlie", "bravo"):
        response = create_task.sync_detailed(ann_id, client=ann, body=TaskCreate(title=title))
        created.append(expect(response, HTTPStatus.CREATED, TaskOut))
        assert response.headers["Location"].endswith(f"/tasks/{created[-1].id}")
        assert response.headers["ETag"]
    delta, alpha, charlie, _ = created
    body = TaskPatch(description="100%_sure", completed=True)
    expect(update_task.sync_detailed(ann_id, delta.id, client=ann, body=body), HTTPStatus.OK, TaskOut)
    step("create tasks (Location, ETag)")

    def listed(
        completed: bool | Unset = UNSET, q: str | Unset = UNSET, limit: int = 50, offset: int = 0
    ) -> TaskPage:
        response = list_tasks.sync_detailed(
            ann_id, client=ann, completed=completed, q=q, limit=limit, offset=offset
        )
        return expect(response, HTTPStatus.OK, TaskPage)

    everything = listed(limit=100).items
    assert len(everything) == 4
    assert [task.id for task in listed(completed=True).items] == [delta.id]
    assert listed(completed=False).total == 3
    assert [task.id for task in listed(q="ALPH").items] == [alpha.id]
    assert [task.id for task in listed(q="0%_s").items] == [delta.id]
    assert listed(q="0%_x").total == 0
    for sort in ListTasksSort:
        page = expect(list_tasks.sync_detailed(ann_id, client=ann, sort=sort), HTTPStatus.OK, TaskPage)
        assert [task.id for task in page.items] == expected_order(everything, sort), sort
    window = expect(
        list_tasks.sync_detailed(ann_id, client=ann, sort=ListTasksSort.TITLE_ASC, limit=2, offset=1),
        HTTPStatus.OK,
        TaskPage,
    )
    assert [task.title for task in window.items] == ["bravo", "charlie"]
    assert (window.total, window.limit, window.offset) == (4, 2, 1)
    past_the_end = listed(offset=10)
    assert (past_the_end.items, past_the_end.total) == ([], 4)
    step("list: completed, q (literal % and _), every sort, limit/offset")

    fetched = get_task.sync_detailed(ann_id, alpha.id, client=ann)
    assert expect(fetched, HTTPStatus.OK, TaskOut).title == "alpha"
    tag = fetched.headers["ETag"]
    expect_empty(
        get_task.sync_detailed(ann_id, alpha.id, client=ann, if_none_match=tag), HTTPStatus.NOT_MODIFIED
    )
    renamed = update_task.sync_detailed(
        ann_id, alpha.id, client=ann, body=TaskPatch(title="aleph"), if_match=tag
    )
    assert expect(renamed, HTTPStatus.OK, TaskOut).title == "aleph"
    assert renamed.headers["ETag"] != tag
    stale = update_task.sync_detailed(
        ann_id, alpha.id, client=ann, body=TaskPatch(title="alef"), if_match=tag
    )
    expect_error(stale, HTTPStatus.PRECONDITION_FAILED)
    assert (
        expect(get_task.sync_detailed(ann_id, alpha.id, client=ann), HTTPStatus.OK, TaskOut).title == "aleph"
    )
    step("ETag, If-None-Match -> 304, stale If-Match -> 412 (nothing changed)")

    toggled = expect(complete_task.sync_detailed(ann_id, charlie.id, client=ann), HTTPStatus.OK, TaskOut)
    assert toggled.completed
    toggled = expect(complete_task.sync_detailed(ann_id, charlie.id, client=ann), HTTPStatus.OK, TaskOut)
    assert not toggled.completed
    for _ in range(2):
        response = complete_task.sync_detailed(
            ann_id, charlie.id, client=ann, body=CompletionSet(completed=True)
        )
        assert expect(response, HTTPStatus.OK, TaskOut).completed
    step("complete: toggle, set (twice)")

    batch = TaskBatchCreate(tasks=[TaskCreate(title=f"batch {number}") for number in range(3)])
    made = expect(
        create_tasks.sync_detailed(ann_id, client=ann, body=batch), HTTPStatus.CREATED, TaskList
    ).items
    assert [task.title for task in made] == ["batch 0", "batch 1", "batch 2"]
    ids = [task.id for task in made]
    done = complete_tasks.sync_detailed(ann_id, client=ann, body=TaskBatchComplete(ids=ids, completed=True))
    assert all(task.completed for task in expect(done, HTTPStatus.OK, TaskList).items)
    one_bad = TaskBatchCreate(tasks=[TaskCreate(title="fine"), TaskCreate(title="   ")])
    expect_error(create_tasks.sync_detailed(ann_id, client=ann, body=one_bad), HTTPStatus.BAD_REQUEST)
    missing = TaskBatchDelete(ids=[*ids, MISSING_ID])
    expect_error(delete_tasks.sync_detailed(ann_id, client=ann, body=missing), HTTPStatus.NOT_FOUND)
    assert listed().total == 7
    deleted = delete_tasks.sync_detailed(ann_id, client=ann, body=TaskBatchDelete(ids=ids))
    assert expect(deleted, HTTPStatus.OK, DeletedCount).deleted == 3
    assert listed().total == 4
    step("batch create/complete/delete; one bad item -> 400/404 and nothing applied")

    key = uuid.uuid4().hex
    first = create_task.sync_detailed(ann_id, client=ann, body=TaskCreate(title="once"), idempotency_key=key)
    again = create_task.sync_detailed(ann_id, client=ann, body=TaskCreate(title="once"), idempotency_key=key)
    assert expect(again, HTTPStatus.CREATED, TaskOut) == expect(first, HTTPStatus.CREATED, TaskOut)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert "Idempotent-Replayed" not in first.headers
    other = create_task.sync_detailed(ann_id, client=ann, body=TaskCreate(title="twice"), idempotency_key=key)
    expect_error(other, HTTPStatus.UNPROCESSABLE_ENTITY)
    assert listed().total == 5
    step("Idempotency-Key: replay (Idempotent-Replayed), other body -> 422")

    expect_error(list_tasks.sync_detailed(ann_id, client=bob), HTTPStatus.FORBIDDEN)
    gone = expect_error(get_task.sync_detailed(ann_id, MISSING_ID, client=ann), HTTPStatus.NOT_FOUND)
    assert str(MISSING_ID) in gone.detail
    bad = expect_error(
        create_task.sync_detailed(ann_id, client=ann, body=TaskCreate(title="")), HTTPStatus.BAD_REQUEST
    )
    assert isinstance(bad.errors, list)
    assert [error.field for error in bad.errors] == ["title"], bad.errors
    forged = AuthenticatedClient(base_url=base_url, token="not-a-token")
    unauthorized = list_tasks.sync_detailed(ann_id, client=forged)
    expect_error(unauthorized, HTTPStatus.UNAUTHORIZED)
    assert unauthorized.headers["WWW-Authenticate"].startswith("Bearer")
    stale_delete = delete_task.sync_detailed(ann_id, charlie.id, client=ann, if_match='"stale"')
    expect_error(stale_delete, HTTPStatus.PRECONDITION_FAILED)
    expect_empty(delete_task.sync_detailed(ann_id, charlie.id, client=ann), HTTPStatus.NO_CONTENT)
    expect_error(get_task.sync_detailed(ann_id, charlie.id, client=ann), HTTPStatus.NOT_FOUND)
    step("error bodies: 403 other user, 404 missing, 400 bad body, 401 bad token, 412 delete; delete 204")

    mirror: dict[int, TaskOut] = {}
    since = feed_start.next_since
    while True:  # everything above, replayed from the feed, a few changes at a time
        feed = list_task_changes.sync_detailed(ann_id, client=ann, since=since, limit=3)
        changes = expect(feed, HTTPStatus.OK, TaskChangesOut)
        mirror |= {task.id: task for task in changes.items}
        for task_id in changes.deleted:
            mirror.pop(task_id, None)
        since = changes.next_since
        if not changes.has_more:
            break
    walked: list[TaskOut] = []
    page = expect(list_tasks.sync_detailed(ann_id, client=ann, limit=2), HTTPStatus.OK, TaskPage)
    while True:
        walked += page.items
        if not isinstance(page.next_cursor, str):
            break
        following = list_tasks.sync_detailed(ann_id, client=ann, limit=2, cursor=page.next_cursor)
        page = expect(following, HTTPStatus.OK, TaskPage)
    assert mirror == {task.id: task for task in walked}
    assert len(walked) == len(mirror)
    listing = list_tasks.sync_detailed(ann_id, client=ann)
    expect_empty(
        list_tasks.sync_detailed(ann_id, client=ann, if_none_match=listing.headers["ETag"]),
        HTTPStatus.NOT_MODIFIED,
    )
    tampered = list_task_changes.sync_detailed(ann_id, client=ann, since=since[:-2] + "xx")
    assert [error.field for error in expect_error(tampered, HTTPStatus.BAD_REQUEST).errors or []] == ["since"]
    step("changes feed replays every change; cursor walk reads each task once; list ETag -> 304")

    renewed = expect(
        refresh.sync_detailed(client=public, body=RefreshRequest(refresh_token=pair.refresh_token)),
        HTTPStatus.OK,
        TokenPair,
    )
    assert renewed.refresh_token != pair.refresh_token
    reused = refresh.sync_detailed(client=public, body=RefreshRequest(refresh_token=pair.refresh_token))
    expect_error(reused, HTTPStatus.UNAUTHORIZED)
    revoked = refresh.sync_detailed(client=public, body=RefreshRequest(refresh_token=renewed.refresh_token))
    expect_error(revoked, HTTPStatus.UNAUTHORIZED)
    step("refresh; reusing a refresh token -> 401 and the family revoked")

    session = account(public, "cid")
    cid = AuthenticatedClient(base_url=base_url, token=session.access_token)
    expect_empty(logout.sync_detailed(client=cid), HTTPStatus.NO_CONTENT)
    after = refresh.sync_detailed(client=public, body=RefreshRequest(refresh_token=session.refresh_token))
    expect_error(after, HTTPStatus.UNAUTHORIZED)
    step("logout with the bearer token only -> 204, its refresh token stops working")


if __name__ == "__main__":
    main(sys.argv[1])
