"""Reads on a real streaming replica (`replication.py`): read-your-writes across instances while
the replica lags, other users' reads on it, a replica that stops or falls behind, and PgBouncer in
front of each endpoint."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from conftest import REDIS_URL, Account, free_port, make_settings, migrate
from helpers import create_task, fetch_task, listed_tasks
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pgbouncer import PgBouncer, running_pgbouncer
from replication import ReplicationPair, replication_pair
from servers import clients_on_every_worker, serving
from sqlalchemy.engine import make_url
from test_metrics import scrape, value

from todo_svc.app import create_app

Client = AsyncTestClient[Litestar]


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicationPair]:
    with replication_pair() as started:
        yield started


@pytest.fixture
async def database(pair: ReplicationPair) -> AsyncIterator[str]:
    """A migrated database of its own on the primary, replayed by the replica, which runs."""
    if not pair.replica_running():
        pair.start_replica()
    await pair.resume_replay()
    url = await pair.create_database(f"todo_replicas_{uuid.uuid4().hex[:8]}")
    await migrate(url)
    await pair.wait_until_caught_up()
    yield url
    if not pair.replica_running():
        pair.start_replica()
    await pair.resume_replay()


@asynccontextmanager
async def instance(database_url: str, replica_url: str, **settings: Any) -> AsyncIterator[Client]:
    """One instance of the service reading from the replica; its replica checks run meanwhile."""
    app = create_app(make_settings(database_url, database_replica_urls=replica_url, **settings))
    async with AsyncTestClient(app=app) as client:
        yield client


async def sign_up(client: httpx.AsyncClient) -> Account:
    email = f"user-{uuid.uuid4().hex[:8]}@example.org"
    response = await client.post("/api/v1/auth/register", json={"email": email, "password": "correct horse"})
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(id=body["user"]["id"], email=email, password="correct horse", token=body["access_token"])


def endpoint(url: str) -> str:
    """How the service names a replica: `host:port`."""
    parsed = make_url(url)
    return f"{parsed.host}:{parsed.port}"


async def replica_reads(client: Client) -> float:
    return value(await scrape(client), "todo_db_reads_total", target="replica")


async def replica_skips(client: Client, pair: ReplicationPair, reason: str) -> float:
    """How often reads passed the replica over for `reason`."""
    skipped = await scrape(client)
    return value(skipped, "todo_db_replica_skips_total", replica=endpoint(pair.replica_url), reason=reason)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)


async def reads_go_to_the_replica(client: Client, account: Account) -> None:
    """Wait until the account's reads are served by the replica (its writes replayed and seen)."""

    async def served_by_replica() -> bool:
        before = await replica_reads(client)
        await listed_tasks(client, account)
        return await replica_reads(client) > before

    await eventually(served_by_replica)


async def on_primary(database_url: str, sql: str, *args: Any) -> None:
    """A change made behind the service's back: no user's write position records it."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(sql, *args)
    finally:
        await connection.close()


@pytest.mark.parametrize("shared", ["redis", "in-process"])
async def test_a_write_is_read_back_at_once_through_a_lagging_replica(
    pair: ReplicationPair, database: str, shared: str
) -> None:
    """With Redis, the write is made on one instance and read on another; without, on one."""
    replica = pair.replica_url_for(database)
    prefix = (
        {"redis_url": REDIS_URL, "redis_key_prefix": f"replicas-{uuid.uuid4().hex}"}
        if shared == "redis"
        else {}
    )
    async with AsyncExitStack() as stack:
        writer = await stack.enter_async_context(instance(database, replica, **prefix))
        reader = (
            writer
            if shared == "in-process"
            else await stack.enter_async_context(instance(database, replica, **prefix))
        )
        ann = await sign_up(writer)
        await reads_go_to_the_replica(reader, ann)
        feed = await reader.get(f"{ann.tasks_url}/changes", headers=ann.headers)
        await pair.pause_replay()

        task = await create_task(writer, ann, title="Written while the replica waits")
        renamed = await writer.patch(
            f"{ann.tasks_url}/{task['id']}", json={"title": "Renamed"}, headers=ann.headers
        )
        assert renamed.status_code == 200

        assert (await fetch_task(reader, ann, task["id"]))["title"] == "Renamed"
        assert [item["title"] for item in await listed_tasks(reader, ann)] == ["Renamed"]
        since = {"since": feed.json()["next_since"]}
        changes = await reader.get(f"{ann.tasks_url}/changes", params=since, headers=ann.headers)
        assert [item["title"] for item in changes.json()["items"]] == ["Renamed"]
        newcomer = await sign_up(writer)  # a sign-up is read back too, before any write of its own
        me = await reader.get("/api/v1/users/me", headers=newcomer.headers)
        assert me.status_code == 200
        assert me.json()["email"] == newcomer.email
        assert await replica_skips(reader, pair, "behind_write") >= 4


async def test_another_users_reads_may_use_the_lagging_replica(pair: ReplicationPair, database: str) -> None:
    replica = pair.replica_url_for(database)
    async with instance(database, replica, replica_max_lag_seconds=60) as client:
        ann, bob = await sign_up(client), await sign_up(client)
        task = await create_task(client, bob, title="As the replica has it")
        await reads_go_to_the_replica(client, bob)
        await pair.pause_replay()

        await create_task(client, ann, title="Ann writes meanwhile")
        await on_primary(database, "UPDATE tasks SET title = 'Only on the primary' WHERE id = $1", task["id"])
        before = await replica_reads(client)
        assert (await fetch_task(client, bob, task["id"]))["title"] == "As the replica has it"
        assert await replica_reads(client) == before + 1
        assert [item["title"] for item in await listed_tasks(client, ann)] == ["Ann writes meanwhile"]

        async def lag_is_reported() -> bool:
            return (
                value(await scrape(client), "todo_db_replica_lag_seconds", replica=endpoint(pair.replica_url))
                > 0.5
            )

        await eventually(lag_is_reported)


async def test_a_replica_past_the_lag_limit_is_passed_over_until_it_catches_up(
    pair: ReplicationPair, database: str
) -> None:
    replica = pair.replica_url_for(database)
    async with instance(database, replica, replica_max_lag_seconds=1) as client:
        bob = await sign_up(client)
        task = await create_task(client, bob, title="Before")
        await reads_go_to_the_replica(client, bob)
        await pair.pause_replay()
        await on_primary(database, "UPDATE tasks SET title = 'After' WHERE id = $1", task["id"])

        async def lagging() -> bool:
            ready = await client.get("/health/ready")
            assert ready.status_code == 200  # a replica never fails readiness
            return bool(ready.json()["checks"][f"replica:{endpoint(pair.replica_url)}"] == "lagging")

        await eventually(lagging)
        before = await replica_reads(client)
        assert (await fetch_task(client, bob, task["id"]))["title"] == "After"
        assert await replica_reads(client) == before
        assert await replica_skips(client, pair, "lagging") >= 1

        await pair.resume_replay()
        await reads_go_to_the_replica(client, bob)
        assert (await fetch_task(client, bob, task["id"]))["title"] == "After"


async def test_a_replica_stopped_mid_load_fails_no_request_and_serves_again_once_back(
    pair: ReplicationPair, database: str
) -> None:
    replica = pair.replica_url_for(database)
    async with instance(database, replica) as client:
        accounts = [await sign_up(client) for _ in range(4)]
        tasks = {account.id: await create_task(client, account) for account in accounts}
        for account in accounts:
            await reads_go_to_the_replica(client, account)
        statuses: list[int] = []
        stop = asyncio.Event()

        async def keep_reading(account: Account) -> None:
            task_url = f"{account.tasks_url}/{tasks[account.id]['id']}"
            while not stop.is_set():
                await asyncio.sleep(0)  # the test client answers in turn: let the others ask
                for url in (account.tasks_url, task_url, "/api/v1/users/me", f"{account.tasks_url}/changes"):
                    statuses.append((await client.get(url, headers=account.headers)).status_code)
                statuses.append(
                    (
                        await client.post(account.tasks_url, json={"title": "x"}, headers=account.headers)
                    ).status_code
                )

        load = [asyncio.create_task(keep_reading(account)) for account in accounts]
        await asyncio.sleep(1.0)
        await asyncio.to_thread(pair.stop_replica)
        ready = await client.get("/health/ready")
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*load)

        assert len(statuses) > 100
        assert sorted(set(statuses)) == [200, 201], [s for s in statuses if s >= 300][:5]
        assert ready.status_code == 200
        await eventually(lambda: unavailable_reported(client, pair))

        await asyncio.to_thread(pair.start_replica)
        for account in accounts:
            await reads_go_to_the_replica(client, account)
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"][f"replica:{endpoint(pair.replica_url)}"] == "ok"


async def unavailable_reported(client: Client, pair: ReplicationPair) -> bool:
    ready = await client.get("/health/ready")
    return (
        ready.status_code == 200
        and ready.json()["checks"][f"replica:{endpoint(pair.replica_url)}"] == "unavailable"
    )


@pytest.fixture(scope="module")
def poolers(pair: ReplicationPair) -> Iterator[tuple[PgBouncer, PgBouncer]]:
    """A PgBouncer in transaction mode in front of the primary, and one in front of the replica."""
    with (
        running_pgbouncer(pair.primary_url, free_port()) as primary,
        running_pgbouncer(pair.replica_url, free_port()) as replica,
    ):
        yield primary, replica


async def test_each_endpoint_may_be_a_pgbouncer_in_transaction_mode(
    pair: ReplicationPair, database: str, poolers: tuple[PgBouncer, PgBouncer]
) -> None:
    primary_pooler, replica_pooler = poolers
    pooled_primary = primary_pooler.url_for(database)
    pooled_replica = replica_pooler.url_for(pair.replica_url_for(database))
    async with instance(pooled_primary, pooled_replica, database_pooler="transaction") as client:
        ann = await sign_up(client)
        await reads_go_to_the_replica(client, ann)
        await pair.pause_replay()
        task = await create_task(client, ann, title="Through the poolers")
        assert (await fetch_task(client, ann, task["id"]))["title"] == "Through the poolers"
        await pair.resume_replay()
        await reads_go_to_the_replica(client, ann)
        assert [item["title"] for item in await listed_tasks(client, ann)] == ["Through the poolers"]


async def test_served_workers_read_each_others_writes_back_through_a_lagging_replica(
    pair: ReplicationPair, database: str, tmp_path: Path
) -> None:
    """`todo-svc serve` with two workers: each is an instance with its own pools and checks."""
    replica = make_url(pair.replica_url_for(database)).set(password="hunter2")
    settings = {
        "WORKERS": "2",
        "DATABASE_REPLICA_URLS": replica.render_as_string(hide_password=False),
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": f"replicas-{uuid.uuid4().hex}",
    }
    async with serving(database, tmp_path / "server.log", **settings) as server, AsyncExitStack() as stack:
        first, second = await clients_on_every_worker(stack, server, workers=2, each=1)
        ann = await sign_up(first)
        await pair.pause_replay()
        for writer, reader in ((first, second), (second, first), (first, second)):
            task = await create_task(writer, ann, title=f"Task {uuid.uuid4().hex[:6]}")
            assert (await fetch_task(reader, ann, task["id"]))["title"] == task["title"]
        titles = {item["title"] for item in await listed_tasks(second, ann)}
        assert len(titles) == 3
        log = "\n".join(server.log_lines())
    shown = f"postgresql://postgres:***@127.0.0.1:{pair.replica_port}/{make_url(database).database}"
    assert f"reads of read-only requests on the replicas {shown} when within 5 s" in log
    assert "each user's last write position in Redis" in log
    assert "hunter2" not in log
