"""`todo-svc serve` as operators run it: several Granian workers, one scrape for all of them,
JSON logs, and a SIGTERM that loses nothing."""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
from conftest import empty_tables
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from servers import clients_on_every_worker, serving, until_every_worker_answered, worker_of
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


def is_health_count(sample: Sample) -> bool:
    return sample.name == "todo_http_requests_total" and sample.labels.get("route") == "/health"


def health_count(exposition: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if is_health_count(sample)
    )


def health_counts_by_process(metrics_dir: Path) -> dict[str, float]:
    """What each process counted itself: prometheus-client keeps a process's counters in a file of its
    own, `counter_<pid>.db`, and a scrape adds them all up."""
    return {
        path.stem.removeprefix("counter_"): sum(
            sample.value
            for family in MultiProcessCollector.merge([str(path)])
            for sample in family.samples
            if is_health_count(sample)
        )
        for path in metrics_dir.glob("counter_*.db")
    }


async def test_one_scrape_sees_every_worker(database_url: str, engine: AsyncEngine, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_4242.db").write_bytes(b"a previous run's file, unreadable")  # emptied at start
    settings = {"WORKERS": "2", "LOG_FORMAT": "json", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    async with serving(database_url, tmp_path / "server.log", **settings) as server:
        # A new connection each time, until both workers answered some (20 at least).
        answers = await until_every_worker_answered(server, 2, path="/health", at_least=20)
        assert {answer.status_code for answer in answers} == {200}
        scrapes = []
        for _ in range(6):  # whichever worker answers the scrape, it reports the whole server
            async with httpx.AsyncClient(base_url=server.url) as client:
                scrapes.append(health_count((await client.get("/metrics")).text))
    assert not (metrics_dir / "counter_4242.db").exists()
    # wait_until_up polled /health before the requests: at least as many, the same in every scrape.
    assert len(set(scrapes)) == 1
    assert scrapes[0] >= len(answers)
    # The scrape is the sum of what each worker counted, and each worker counted some.
    by_process = health_counts_by_process(metrics_dir)
    assert sum(by_process.values()) == scrapes[0], by_process
    workers = server.worker_pids()
    assert len(workers) == 2, server.tail()
    assert all(by_process.get(pid, 0) > 0 for pid in workers), (by_process, workers)

    access = server.json_lines()
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
        answered_by: set[str] = set()  # the workers that answered them
        unanswered: list[str] = []

        async def writer(number: int, client: httpx.AsyncClient) -> None:
            for attempt in range(100_000):
                title = f"writer {number} task {attempt}"
                try:
                    response = await client.post(url, json={"title": title})
                except httpx.TransportError:  # refused, or cut: either way no answer
                    unanswered.append(title)
                    return
                answered[title] = response.status_code
                answered_by.add(worker_of(response))

        async with AsyncExitStack() as stack:
            # Four writers on a kept-alive connection to each worker: both are busy when the signal comes.
            clients = await clients_on_every_worker(stack, server, 2, 4, headers=headers, timeout=30)
            writers = [asyncio.create_task(writer(number, client)) for number, client in enumerate(clients)]
            await asyncio.sleep(1.5)
            assert answered, "no write went through before the signal"
            assert len(answered_by) == 2, "the writes before the signal did not reach both workers"
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
        for line in server.json_lines()
        if line.get("method") == "POST" and line.get("route") == "/api/v1/users/{user_id}/tasks"
    ]
    assert len(logged_creates) == len(answered)  # no request was taken on and left unanswered
