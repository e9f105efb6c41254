"""Input no route is meant for: a clear 4xx in the error format, never a 500, nothing stored."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Account
from helpers import assert_error
from litestar import Litestar
from litestar.testing import AsyncTestClient
from servers import serving

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


ODD_VALUES = [b"\xff", b"\x80\x81", b"\xc3\xa9", b"a\x01b", b"\x7f", b'"\xff"', b"Bearer \xff", b"*"]
HEADERS = [
    *(b"Authorization", b"If-Match", b"If-None-Match", b"Idempotency-Key", b"Content-Type"),
    *(b"X-Forwarded-For", b"Forwarded", b"X-Request-ID", b"Accept", b"Origin", b"Cookie"),
]
ODD_QUERY = [b"\xff", b"%FF", b"%00", b"a%00b", b"%", b"%zz", b"\x01", b"%E2%80%AE", b"9" * 30, b"-1"]
QUERY_NAMES = [b"completed", b"q", b"sort", b"limit", b"offset", b"%FF"]


async def test_any_byte_in_any_header_or_query_parameter_is_never_a_500(
    database_url: str, tmp_path: Path
) -> None:
    """Sent as raw HTTP/1.1 to the real server, so the bytes reach it as they are."""
    async with serving(database_url, tmp_path / "server.log", RATE_LIMIT_ENABLED="false") as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            credentials = {"email": "odd@example.org", "password": "password1"}
            await http.post("/api/v1/auth/register", json=credentials)
            tokens = (await http.post("/api/v1/auth/login", json=credentials)).json()
            tasks = f"/api/v1/users/{tokens['user']['id']}/tasks"
            bearer = (b"Authorization", f"Bearer {tokens['access_token']}".encode())
            task = (await http.post(tasks, json={"title": "x"}, headers=dict([bearer]))).json()
        one = f"{tasks}/{task['id']}".encode()
        requests = [
            (method, path, [header for header in (bearer, JSON) if header[0] != name] + [(name, value)], body)
            for name in HEADERS
            for value in ODD_VALUES
            for method, path, body in (
                (b"GET", one, b""),
                (b"PATCH", one, b'{"title": "y"}'),
                (b"POST", tasks.encode(), b'{"title": "y"}'),
                (b"POST", b"/api/v1/auth/login", json.dumps(credentials).encode()),
            )
        ] + [
            (b"GET", path + b"?" + name + b"=" + value, [bearer], b"")
            for name in QUERY_NAMES
            for value in ODD_QUERY
            for path in (tasks.encode(), one)
        ]
        answers = [await raw_request(server.url, *request) for request in requests]
    failures = [
        (request[:3], status) for request, (status, _) in zip(requests, answers, strict=True) if status >= 500
    ]
    assert failures == []
    for request, (status, body) in zip(requests, answers, strict=True):
        if not_http(request):  # Granian's HTTP parser refuses it before the app: a bare 400
            assert status == 400, request
        elif status >= 400 and status != 405:
            assert json.loads(body)["status_code"] == status, (request, status, body)
    assert not [line for line in server.log_lines() if "unhandled error" in line]


JSON = (b"Content-Type", b"application/json")
CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
NOT_ASCII = re.compile(rb"[^\x21-\x7e]")


def not_http(request: tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes]) -> bool:
    """A control character in a header value, or a byte a URL may not hold unencoded."""
    _, target, headers, _ = request
    return bool(NOT_ASCII.search(target) or any(CONTROL.search(value) for _, value in headers))


async def raw_request(
    url: str, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, bytes]:
    """One request on its own connection, bytes as given; the status and the body."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    writer.write(
        b"%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n%s\r\n%s"
        % (method, target, host.encode(), len(body), head, body)
    )
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]
