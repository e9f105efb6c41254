"""`todo-svc serve` as operators run it: several Granian workers, one scrape for all of them,
JSON logs, and a SIGTERM that loses nothing."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
from conftest import empty_tables
from prometheus_client.parser import text_string_to_metric_families
from servers import serving
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


def health_count(exposition: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "todo_http_requests_total" and sample.labels.get("route") == "/health"
    )


async def test_one_scrape_sees_every_worker(database_url: str, engine: AsyncEngine, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_4242.db").write_bytes(b"a previous run's file, unreadable")  # emptied at start
    settings = {"WORKERS": "2", "LOG_FORMAT": "json", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    async with serving(database_url, tmp_path / "server.log", **settings) as server:
        for _ in range(20):  # a new connection each time, so both workers answer some
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert (await client.get("/health")).status_code == 200
        scrapes = []
        for _ in range(6):  # whichever worker answers the scrape, it reports the whole server
            async with httpx.AsyncClient(base_url=server.url) as client:
                scrapes.append(health_count((await client.get("/metrics")).text))
    assert not (metrics_dir / "counter_4242.db").exists()
    # wait_until_up polled /health before the 20 requests: at least 20, the same in every scrape.
    assert len(set(scrapes)) == 1
    assert scrapes[0] >= 20

    access = [json.loads(line) for line in server.log_lines() if line.startswith('{"')]
    health_lines = [line for line in access if line.get("route") == "/health"]
    assert len(health_lines) == scrapes[0]
    assert {line["status"] for line in health_lines} == {200}
    assert len({line["request_id"] for line in health_lines}) == len(health_lines)


async def test_sigterm_lets_in_flight_requests_finish_and_loses_no_write(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    """Writers keep creating tasks while the server gets SIGTERM. Every write the server took on is
    answered 201 and stored; a request that got no answer was never taken on (nothing of it is
    stored, the server never logged it); the server exits cleanly."""
    settings = {"WORKERS": "2", "LOG_FORMAT": "json", "RATE_LIMIT_TASKS": "1000000/minute"}
    async with serving(database_url, tmp_path / "server.log", **settings) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            credentials = {"email": "sigterm@example.org", "password": "long enough pw"}
            account = (await client.post("/api/v1/auth/register", json=credentials)).json()
        url = f"/api/v1/users/{account['user']['id']}/tasks"
        headers = {"Authorization": f"Bearer {account['access_token']}"}
        answered: dict[str, int] = {}  # title -> status
        unanswered: list[str] = []

        async def writer(number: int) -> None:
            async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
                for attempt in range(100_000):
                    title = f"writer {number} task {attempt}"
                    try:
                        response = await client.post(url, json={"title": title})
                    except httpx.TransportError:  # refused, or cut: either way no answer
                        unanswered.append(title)
                        return
                    answered[title] = response.status_code

        writers = [asyncio.create_task(writer(number)) for number in range(8)]
        await asyncio.sleep(1.5)
        assert answered, "no write went through before the signal"
        server.process.send_signal(signal.SIGTERM)
        exit_status = await asyncio.wait_for(server.process.wait(), timeout=60)
        await asyncio.wait_for(asyncio.gather(*writers), timeout=60)

    assert exit_status == 0
    assert set(answered.values()) == {201}
    async with engine.connect() as connection:
        stored = set((await connection.execute(text("SELECT title FROM tasks"))).scalars())
    await empty_tables(engine)
    assert stored == set(answered)  # every 201 is stored, and nothing unanswered is
    logged_creates = [
        line
        for line in map(json.loads, (line for line in server.log_lines() if line.startswith('{"')))
        if line.get("method") == "POST" and line.get("route") == "/api/v1/users/{user_id}/tasks"
    ]
    assert len(logged_creates) == len(answered)  # no request was taken on and left unanswered
