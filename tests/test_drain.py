"""Draining on SIGTERM: out of the gateway's rotation first, still serving, then a bounded stop."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import httpx
from conftest import make_settings
from helpers import assert_error
from litestar.testing import AsyncTestClient
from servers import Server, serving, until_every_worker_answered

from todo_svc.app import create_app

DRAINING = {"shutdown": "draining"}


async def test_a_draining_app_is_not_ready_and_closes_every_connection(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with AsyncTestClient(app=app) as client:
        before = await client.get("/health/ready")
        app.state.drain.begin()
        ready = await client.get("/health/ready")
        alive = await client.get("/health")
        missing = await client.get("/api/v1/users/me")
    assert before.status_code == 200
    assert "connection" not in before.headers
    assert assert_error(ready, 503)["checks"] == DRAINING
    assert alive.status_code == 200  # liveness: the process is fine, a restart would not help
    assert {response.headers.get("connection") for response in (ready, alive, missing)} == {"close"}


async def readiness_of_every_worker(server: Server, workers: int) -> list[int]:
    """Readiness on new connections until every worker answered it (six times at least)."""
    answers = await until_every_worker_answered(server, workers, path="/health/ready", at_least=6)
    return [answer.status_code for answer in answers]


async def readiness_on_a_new_connection(server: Server) -> int:
    async with httpx.AsyncClient(base_url=server.url) as client:
        return (await client.get("/health/ready")).status_code


async def test_sigterm_drains_for_the_configured_time_while_serving(
    database_url: str, tmp_path: Path
) -> None:
    settings = {"WORKERS": "2", "SHUTDOWN_DRAIN_SECONDS": "4"}
    async with (
        serving(database_url, tmp_path / "server.log", **settings) as server,
        httpx.AsyncClient(base_url=server.url) as kept_alive,
    ):
        assert (await kept_alive.get("/health")).headers.get("connection") is None
        ready = await readiness_of_every_worker(server, 2)
        assert ready == [200] * len(ready)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        while await readiness_on_a_new_connection(server) != 503:  # the signal reaches the workers…
            assert time.monotonic() - signalled < 1.5
        draining = await readiness_of_every_worker(server, 2)
        assert draining == [503] * len(draining)  # …every one of them
        during = await kept_alive.get("/health")  # the connection a gateway kept is still served…
        assert during.status_code == 200
        assert during.headers["connection"] == "close"  # …and then closed
        registered = await kept_alive.post(
            "/api/v1/auth/register", json={"email": f"{uuid.uuid4().hex}@example.org", "password": "long pw!"}
        )
        assert registered.status_code == 201  # writes too
        assert server.process.returncode is None
        exit_status = await asyncio.wait_for(server.process.wait(), timeout=30)
        stopped_after = time.monotonic() - signalled
    assert exit_status == 0
    assert 4 <= stopped_after < 4 + 5
    lines = server.log_lines()
    assert sum("draining: readiness answers 503" in line for line in lines) == 2  # each worker
    try:
        async with httpx.AsyncClient(base_url=server.url) as late:
            await late.get("/health")
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("the server still accepts connections after it stopped")


async def test_a_second_sigterm_stops_at_once(database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path / "server.log", SHUTDOWN_DRAIN_SECONDS="60") as server:
        server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert server.process.returncode is None  # draining
        signalled_again = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.process.wait(), timeout=30) == 0
        assert time.monotonic() - signalled_again < 5
