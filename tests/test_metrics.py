"""/metrics after known traffic: requests by route template and status, latency, in-flight, pool,
logins and rate-limit rejections."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from conftest import Account, concurrently, make_settings
from helpers import create_task
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from todo_svc.app import create_app

Client = AsyncTestClient[Litestar]
TASKS_ROUTE = "/api/v1/users/{user_id}/tasks"


async def scrape(client: Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_and_status(client: Client, ann: Account) -> None:
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(ann.tasks_url, headers=ann.headers)).status_code == 200
    assert (await client.get(f"{ann.tasks_url}/999", headers=ann.headers)).status_code == 404
    assert (await client.get("/no/such/thing")).status_code == 404
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    listed = {"method": "GET", "route": TASKS_ROUTE}
    assert delta("todo_http_requests_total", **listed, status="200") == 3
    assert delta("todo_http_request_duration_seconds_count", **listed) == 3
    assert delta("todo_http_request_duration_seconds_sum", **listed) > 0
    assert delta("todo_http_request_duration_seconds_bucket", **listed, le="+Inf") == 3
    one_task = {"method": "GET", "route": TASKS_ROUTE + "/{task_id}", "status": "404"}
    assert delta("todo_http_requests_total", **one_task) == 1
    assert delta("todo_http_requests_total", method="GET", route="unmatched", status="404") == 1

    routes = {dict(labels).get("route", "") for _, labels in after}
    assert not any(re.search(r"/\d", route) for route in routes), "a raw path became a label"


async def settled(api: Any, name: str, expected: float, tries: int = 50) -> float:
    """The gauge once it reads `expected` (the pool is sampled once a second), else its value after
    `tries` scrapes a tenth of a second apart."""
    for _ in range(tries):
        if (current := value(await scrape(api), name)) == expected:
            break
        await asyncio.sleep(0.1)
    return current


async def test_in_flight_requests_and_the_pool_are_reported(
    client: Client, ann: Account, engine: AsyncEngine
) -> None:
    await client.get(ann.tasks_url, headers=ann.headers)
    samples = await scrape(client)
    assert value(samples, "todo_http_requests_in_flight") == 1  # the scrape itself
    assert value(samples, "todo_db_pool_size") >= 5  # the suite's app: DATABASE_POOL_SIZE=5
    task = await create_task(client, ann)
    held = 3  # requests waiting for a row lock, each on a connection of the pool

    async def while_held(concurrent: httpx.AsyncClient) -> tuple[float, float, list[int], float]:
        # A connection outside the app's pool, made on the loop it runs on (asyncpg binds one to its loop).
        locker = create_async_engine(engine.url, poolclass=NullPool)
        try:
            async with locker.connect() as lock:
                await lock.execute(text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": task["id"]})
                url = f"{ann.tasks_url}/{task['id']}/complete"
                waiting = [
                    asyncio.create_task(concurrent.patch(url, headers=ann.headers)) for _ in range(held)
                ]
                in_use = await settled(concurrent, "todo_db_pool_connections_in_use", held)
                in_flight = value(await scrape(concurrent), "todo_http_requests_in_flight")
                await lock.rollback()
            statuses = [response.status_code for response in await asyncio.gather(*waiting)]
        finally:
            await locker.dispose()
        return in_use, in_flight, statuses, await settled(concurrent, "todo_db_pool_connections_in_use", 0)

    in_use, in_flight, statuses, in_use_after = await concurrently(client, while_held)
    assert in_use == held
    assert in_flight == held + 1  # and the scrape
    assert statuses == [200] * held
    assert in_use_after == 0


async def test_logins_are_counted_by_outcome(client: Client, ann: Account) -> None:
    before = await scrape(client)
    good = {"email": ann.email, "password": ann.password}
    assert (await client.post("/api/v1/auth/login", json=good)).status_code == 200
    for _ in range(2):
        wrong = {"email": ann.email, "password": "not the password"}
        assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
    after = await scrape(client)
    assert (
        value(after, "todo_logins_total", outcome="success")
        - value(before, "todo_logins_total", outcome="success")
        == 1
    )
    assert (
        value(after, "todo_logins_total", outcome="failure")
        - value(before, "todo_logins_total", outcome="failure")
        == 2
    )


async def test_rate_limit_rejections_are_counted_by_family(database_url: str, client: Client) -> None:
    app = create_app(make_settings(database_url, rate_limit_auth="1/minute"))
    async with AsyncTestClient(app=app) as limited:
        before = await scrape(limited)
        body: dict[str, Any] = {"email": "nobody@example.org", "password": "not the password"}
        statuses = [(await limited.post("/api/v1/auth/login", json=body)).status_code for _ in range(3)]
        after = await scrape(limited)
    assert statuses == [401, 429, 429]
    rejected = "todo_rate_limit_rejections_total"
    assert value(after, rejected, family="auth") - value(before, rejected, family="auth") == 2
