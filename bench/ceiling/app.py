"""The ceiling: todo-svc's hot task routes with no framework at all.

Raw ASGI on Granian, an asyncpg pool, msgspec and PyJWT. It does the work the
contract requires of these routes (bearer JWT check, owner check, strict body,
the same JSON and headers) and nothing else, so todo-svc's throughput divided
by this app's is the share of "the fastest reasonable Python" it reaches.

    DATABASE_URL=postgresql://… JWT_SECRET_KEY=… \
        granian --interface asgi --loop uvloop --workers 1 bench.ceiling.app:app

Routes (each: one statement on the pool; a full list page adds the count):
    GET   /api/v1/users/{uid}/tasks?limit=&offset=
    POST  /api/v1/users/{uid}/tasks                      {"title", "description"?, "completed"?}
    GET   /api/v1/users/{uid}/tasks/{id}
    PUT   /api/v1/users/{uid}/tasks/{id}                 {"title", "description"?, "completed"?}
    PATCH /api/v1/users/{uid}/tasks/{id}/complete        {"completed": bool}, or no body to toggle
    GET   /health
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import jwt
import msgspec

PREFIX = "/api/v1/users/"
# Every query returns the task's columns in the same order (row[0] is id, row[5] version, ...).
LIST_SQL = """SELECT id, user_id, title, description, completed, version, created_at, updated_at
FROM tasks WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"""
COUNT_SQL = "SELECT count(*) FROM tasks WHERE user_id = $1"
GET_SQL = """SELECT id, user_id, title, description, completed, version, created_at, updated_at
FROM tasks WHERE id = $1 AND user_id = $2"""
INSERT_SQL = """INSERT INTO tasks (user_id, title, description, completed, version, created_at, updated_at)
VALUES ($1, $2, $3, $4, 1, now(), now())
RETURNING id, user_id, title, description, completed, version, created_at, updated_at"""
COMPLETE_SQL = """UPDATE tasks SET completed = coalesce($1, NOT completed), version = version + 1,
updated_at = now() WHERE id = $2 AND user_id = $3
RETURNING id, user_id, title, description, completed, version, created_at, updated_at"""
REPLACE_SQL = """UPDATE tasks SET title = $1, description = $2, completed = $3, version = version + 1,
updated_at = now() WHERE id = $4 AND user_id = $5
RETURNING id, user_id, title, description, completed, version, created_at, updated_at"""
MAX_ID = 2**63 - 1
STATIC_HEADERS = [
    (b"content-type", b"application/json"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]


class TaskOut(msgspec.Struct):
    id: int
    user_id: int
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime


class TaskPage(msgspec.Struct):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class TaskCreate(msgspec.Struct, forbid_unknown_fields=True):  # also the body of PUT
    title: str
    description: str | None = None
    completed: bool = False


class CompletionSet(msgspec.Struct, forbid_unknown_fields=True):
    completed: bool


class HttpError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail


encode = msgspec.json.Encoder().encode
decode_create = msgspec.json.Decoder(TaskCreate, strict=True).decode
decode_complete = msgspec.json.Decoder(CompletionSet, strict=True).decode
SECRET = os.environ.get("JWT_SECRET_KEY", "")
POOL_SIZE = int(os.environ.get("DATABASE_POOL_SIZE", "10"))
pool: asyncpg.Pool | None = None


def task_out(row: asyncpg.Record) -> TaskOut:
    return TaskOut(row[0], row[1], row[2], row[3], row[4], row[6], row[7])


def authenticate(scope: dict[str, Any], uid: int) -> None:
    """401 without a valid HS256 bearer token, 403 when its subject is not the path's user."""
    auth = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
    scheme, _, token = auth.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HttpError(401, "Missing bearer token")
    try:
        claims = jwt.decode(
            token, SECRET, algorithms=["HS256"], leeway=10, options={"require": ["sub", "exp", "iat", "jti"]}
        )
    except jwt.PyJWTError:
        raise HttpError(401, "Invalid token") from None
    sub = claims["sub"]
    if not isinstance(sub, str) or not (sub.isascii() and sub.isdigit()):
        raise HttpError(401, "Invalid token")
    if int(sub) != uid:
        raise HttpError(403, "You may only access your own tasks")


def parse_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_ID:
        raise HttpError(404, "Not found")
    return int(text)


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def handle(scope: dict[str, Any], receive: Any) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        if path == "/health":
            return 200, b'{"status":"ok"}', []
        raise HttpError(404, "Not found")
    parts = path[len(PREFIX) :].split("/")
    if len(parts) < 2 or parts[1] != "tasks" or len(parts) > 4:
        raise HttpError(404, "Not found")
    uid = parse_id(parts[0])
    method = scope["method"]
    authenticate(scope, uid)
    assert pool is not None  # noqa: S101 - set by the lifespan before any request

    if len(parts) == 2 and method == "GET":
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        try:
            limit, offset = int(query.get("limit", "50")), int(query.get("offset", "0"))
        except ValueError:
            raise HttpError(400, "limit and offset must be integers") from None
        if not (1 <= limit <= 100 and 0 <= offset <= MAX_ID):
            raise HttpError(400, "limit must be 1-100 and offset >= 0")
        async with pool.acquire() as conn:
            rows = await conn.fetch(LIST_SQL, uid, limit, offset)
            total = len(rows) if offset == 0 and len(rows) < limit else await conn.fetchval(COUNT_SQL, uid)
        return 200, encode(TaskPage([task_out(r) for r in rows], total, limit, offset)), []

    if len(parts) == 2 and method == "POST":
        data = await read_task(receive)
        try:
            row = await pool.fetchrow(INSERT_SQL, uid, data.title, data.description, data.completed)
        except asyncpg.ForeignKeyViolationError:
            raise HttpError(404, "User not found") from None
        location = f"{path.rstrip('/')}/{row[0]}".encode()
        return 201, encode(task_out(row)), [(b"location", location), etag(row)]

    task_id = parse_id(parts[2]) if len(parts) > 2 else 0
    if len(parts) == 3 and method == "GET":
        row = await pool.fetchrow(GET_SQL, task_id, uid)
    elif len(parts) == 3 and method == "PUT":
        data = await read_task(receive)
        row = await pool.fetchrow(REPLACE_SQL, data.title, data.description, data.completed, task_id, uid)
    elif len(parts) == 4 and parts[3] == "complete" and method == "PATCH":
        body = await read_body(receive)
        try:
            completed = decode_complete(body).completed if body.strip() else None
        except msgspec.DecodeError as exc:
            raise HttpError(400, str(exc)) from None
        row = await pool.fetchrow(COMPLETE_SQL, completed, task_id, uid)
    else:
        raise HttpError(404, "Not found")
    if row is None:
        raise HttpError(404, f"Task {task_id} not found")
    return 200, encode(task_out(row)), [etag(row)]


async def read_task(receive: Any) -> TaskCreate:
    try:
        data = decode_create(await read_body(receive))
    except msgspec.DecodeError as exc:
        raise HttpError(400, str(exc)) from None
    data.title = data.title.strip()
    if not 1 <= len(data.title) <= 255 or (data.description is not None and len(data.description) > 10_000):
        raise HttpError(400, "title must be 1-255 characters, description at most 10000")
    return data


def etag(row: asyncpg.Record) -> tuple[bytes, bytes]:
    return b"etag", f'"{row[0]}.{row[5]}"'.encode()


async def lifespan(receive: Any, send: Any) -> None:
    global pool  # one pool per worker process, made at startup
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            pool = await asyncpg.create_pool(
                os.environ["DATABASE_URL"],
                min_size=POOL_SIZE,
                max_size=POOL_SIZE,
                # Behind a pooler in transaction mode no statement may stay prepared (as todo-svc's
                # DATABASE_POOLER=transaction): asyncpg then sends each statement unnamed.
                statement_cache_size=0 if os.environ.get("DATABASE_POOLER") == "transaction" else 100,
            )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if pool is not None:
                await pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    try:
        status, body, headers = await handle(scope, receive)
    except HttpError as exc:
        status, headers = exc.status, []
        body = encode(
            {"error": HTTPStatus(exc.status).phrase, "detail": exc.detail, "status_code": exc.status}
        )
    headers = [*STATIC_HEADERS, (b"x-request-id", uuid.uuid4().hex.encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
