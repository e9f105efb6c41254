"""Probes, the OpenAPI document and the docs pages."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from conftest import REDIS_URL, free_port, make_settings
from helpers import assert_error, csp_directives
from litestar import Litestar
from litestar.testing import AsyncTestClient

from todo_svc.app import create_app

Client = AsyncTestClient[Litestar]

CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:1/x"


@pytest.fixture
async def unreachable_db_client() -> AsyncIterator[Client]:
    """The app with its database on a port where nothing listens."""
    async with AsyncTestClient(app=create_app(make_settings(CLOSED_PORT_URL))) as test_client:
        yield test_client


# --------------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------------


async def test_health_is_ok(client: Client) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_health_never_touches_the_database(unreachable_db_client: Client) -> None:
    async with asyncio.timeout(10):
        response = await unreachable_db_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_the_database_answers(client: Client) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"


async def test_not_ready_when_the_database_is_down(unreachable_db_client: Client) -> None:
    async with asyncio.timeout(10):
        response = await unreachable_db_client.get("/health/ready", headers={"X-Request-ID": "probe-1"})
    body = assert_error(response, 503)
    assert body["request_id"] == "probe-1"
    assert body["checks"]["database"] != "ok"
    for leaked in ("Connect", "refused", "Errno", "127.0.0.1", "asyncpg", "Traceback", "postgres"):
        assert leaked not in response.text


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def test_readiness_recovers_when_the_database_comes_back(database_url: str) -> None:
    """The database behind a port that is closed at first, then forwards to the real server."""
    target = urlsplit(database_url)
    port = free_port()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(target.hostname, target.port)
        await asyncio.gather(forward(client_reader, server_writer), forward(server_reader, client_writer))

    app = create_app(make_settings(database_url.replace(f":{target.port}/", f":{port}/")))
    async with AsyncTestClient(app=app) as test_client:
        down = await test_client.get("/health/ready")
        assert down.status_code == 503
        assert down.json()["checks"]["database"] != "ok"
        relay_server = test_client.blocking_portal.call(asyncio.start_server, relay, "127.0.0.1", port)
        try:
            up = await test_client.get("/health/ready")
        finally:
            test_client.blocking_portal.call(relay_server.close)
    assert up.status_code == 200, up.text
    assert up.json()["checks"] == {"database": "ok"}


async def test_ready_reports_redis_when_it_is_configured(database_url: str) -> None:
    app = create_app(make_settings(database_url, redis_url=REDIS_URL))
    async with AsyncTestClient(app=app) as test_client:
        response = await test_client.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_not_ready_when_redis_is_down(database_url: str) -> None:
    app = create_app(make_settings(database_url, redis_url="redis://127.0.0.1:1/0"))
    async with AsyncTestClient(app=app) as test_client, asyncio.timeout(10):
        response = await test_client.get("/health/ready")
        body = assert_error(response, 503)
        assert body["checks"] == {"database": "ok", "redis": "unavailable"}
        # The API itself still answers: the limiter lets requests through while Redis is away.
        assert (await test_client.get("/health")).status_code == 200


async def test_not_ready_when_the_database_accepts_but_never_answers() -> None:
    """A hung database (accepting TCP, never speaking) must not hang the probe."""
    connections: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        app = create_app(make_settings(f"postgresql://postgres@127.0.0.1:{port}/x"))
        async with AsyncTestClient(app=app) as test_client, asyncio.timeout(10):
            response = await test_client.get("/health/ready")
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
    body = assert_error(response, 503)
    assert body["checks"]["database"] != "ok"


# --------------------------------------------------------------------------------------------------
# Docs pages
# --------------------------------------------------------------------------------------------------


def csp_sources(policy: str, directive: str) -> list[str]:
    directives = csp_directives(policy)
    return directives.get(directive, directives.get("default-src", []))


def allowed_by(url: str, sources: list[str]) -> bool:
    parts = urlsplit(url)
    if not parts.scheme:
        return "'self'" in sources
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin in sources or url.startswith(tuple(source for source in sources if "://" in source))


def inline_allowed(content: str, sources: list[str]) -> bool:
    digest = base64.b64encode(hashlib.sha256(content.encode()).digest()).decode()
    return "'unsafe-inline'" in sources or f"'sha256-{digest}'" in sources


@pytest.mark.parametrize("path", ["/docs", "/docs/redoc"])
async def test_docs_pages_are_public_html(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assert "todo-svc" in response.text


@pytest.mark.parametrize("path", ["/docs", "/docs/redoc"])
async def test_docs_pages_csp_allows_their_own_scripts_and_styles(client: Client, path: str) -> None:
    """A CSP that blocks the page's scripts leaves the docs blank."""
    response = await client.get(path)
    policy = response.headers["content-security-policy"]
    scripts = re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)", response.text)
    styles = re.findall(r"<link[^>]*rel=[\"']stylesheet[\"'][^>]*href=[\"']([^\"']+)", response.text)
    styles += re.findall(r"<link[^>]*href=[\"']([^\"']+)[\"'][^>]*rel=[\"']stylesheet", response.text)
    assert scripts, "the docs page loads no script?"
    for url in scripts:
        assert allowed_by(url, csp_sources(policy, "script-src")), (url, policy)
    for url in styles:
        assert allowed_by(url, csp_sources(policy, "style-src")), (url, policy)
    # Inline ones run only with 'unsafe-inline' or their own hash in the policy.
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        for inline in re.findall(rf"<{tag}(?![^>]*\bsrc=)[^>]*>(.*?)</{tag}>", response.text, re.DOTALL):
            assert inline_allowed(inline, csp_sources(policy, directive)), (tag, inline[:80], policy)
