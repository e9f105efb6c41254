"""The 1 MiB request body limit: 413 in the error format, with or without a Content-Length, and
nothing stored; a body under the limit reaches validation."""

from __future__ import annotations

from typing import Any

from helpers import ONE_MIB, assert_error, oversized_json
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]


async def test_body_over_one_mib_to_register_is_413(client: Client) -> None:
    response = await client.post(
        "/api/v1/auth/register", content=oversized_json("email"), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413)


async def test_body_over_one_mib_to_task_create_is_413_and_stores_nothing(client: Client, ann: Any) -> None:
    response = await client.post(
        ann.tasks_url,
        content=oversized_json("title"),
        headers={**ann.headers, "Content-Type": "application/json"},
    )
    assert_error(response, 413)
    listed = await client.get(ann.tasks_url, headers=ann.headers)
    assert listed.json()["total"] == 0


async def test_body_just_under_the_limit_is_not_413(client: Client, ann: Any) -> None:
    """The limit is 1 MiB, not less: a big but allowed body reaches validation (too-long title → 400)."""
    body = b'{"title": "' + b"a" * (ONE_MIB - 100) + b'"}'
    response = await client.post(
        ann.tasks_url, content=body, headers={**ann.headers, "Content-Type": "application/json"}
    )
    assert_error(response, 400)


async def raw_asgi_post(app: Litestar, path: str, chunks: list[bytes]) -> tuple[int, dict[str, str], bytes]:
    """POST a body in chunks without Content-Length (as a chunked upload arrives), straight to the app."""
    pending = list(chunks)
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
        "extensions": {},
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    start = next(message for message in messages if message["type"] == "http.response.start")
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    body = b"".join(
        message.get("body", b"") for message in messages if message["type"] == "http.response.body"
    )
    return start["status"], headers, body


async def test_chunked_body_over_one_mib_without_content_length_is_413(client: Client, app: Litestar) -> None:
    chunks = [b'{"email": "', *([b"a" * 65536] * 17), b'", "password": "long enough"}']
    status, headers, body = await raw_asgi_post(app, "/api/v1/auth/register", chunks)
    assert status == 413, body
    assert b'"status_code":413' in body.replace(b" ", b"")
    assert "x-request-id" in headers
