"""Input no route is meant for: a clear 4xx in the error format, never a 500, nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Account
from litestar import Litestar
from litestar.testing import AsyncTestClient
from test_contract import assert_error

Client = AsyncTestClient[Litestar]
DEPTH = 1000


def nested(opening: str, innermost: str, closing: str) -> bytes:
    return (opening * DEPTH + innermost + closing * DEPTH).encode()


@pytest.mark.parametrize(
    "body",
    [nested("[", "", "]"), nested('{"a": ', "1", "}"), b'{"title": ' + nested("[", "", "]") + b"}"],
    ids=["arrays", "objects", "inside-a-field"],
)
@pytest.mark.parametrize("route", ["register", "login", "create", "batch"])
async def test_json_nested_a_thousand_deep_is_a_400(
    client: Client, ann: Account, route: str, body: bytes
) -> None:
    url = {
        "register": "/api/v1/auth/register",
        "login": "/api/v1/auth/login",
        "create": ann.tasks_url,
        "batch": f"{ann.tasks_url}/batch",
    }[route]
    response = await client.post(
        url, content=body, headers={**ann.headers, "content-type": "application/json"}
    )
    error = assert_error(response, 400)
    assert error["errors"][0]["field"] in {"body", "title", "tasks"}
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 0


@pytest.mark.parametrize("q", ["a\x00b", "\x00"])
async def test_a_nul_in_the_search_is_a_400(client: Client, ann: Account, q: str) -> None:
    response = await client.get(ann.tasks_url, params={"q": q}, headers=ann.headers)
    error = assert_error(response, 400)
    assert "q" in str(error["errors"])


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", '{"title": "Buy milk"}'),
        ("application/x-www-form-urlencoded", "title=Buy+milk"),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="title"\r\n\r\nmilk\r\n--x--',
        ),
        ("application/xml", "<task><title>Buy milk</title></task>"),
    ],
)
async def test_a_body_that_is_not_json_is_a_415_and_stores_nothing(
    client: Client, ann: Account, content_type: str, content: str
) -> None:
    headers = {**ann.headers, "content-type": content_type}
    response = await client.post(ann.tasks_url, content=content, headers=headers)
    error = assert_error(response, 415)
    assert "application/json" in error["detail"]
    assert (await client.get(ann.tasks_url, headers=ann.headers)).json()["total"] == 0
    login = await client.post("/api/v1/auth/login", content=content, headers={"content-type": content_type})
    assert_error(login, 415)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", None]
)
async def test_json_is_accepted_with_or_without_its_parameters(
    client: Client, ann: Account, content_type: str | None
) -> None:
    headers: dict[str, Any] = dict(ann.headers)
    if content_type is not None:
        headers["content-type"] = content_type
    response = await client.post(ann.tasks_url, content=b'{"title": "Buy milk"}', headers=headers)
    assert response.status_code == 201, response.text
