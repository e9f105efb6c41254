"""The deployment's topology, driven through its gateway: nginx from `deploy/nginx/` in front of two
`todo-svc serve` instances, PgBouncer in transaction mode in front of PostgreSQL, rate limits and
sessions shared through Redis and the database, and a rolling restart under load (the compose file
that wires the same topology: test_deploy_compose.py)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis
from conftest import REDIS_URL, SECRET, create_postgres_database, drop_postgres_database, free_port, run_cli
from gateway import (
    PASSWORD,
    Gateway,
    Instance,
    client,
    config_seconds,
    mixed_load,
    raw_get,
    register,
    running_gateway,
    served_by,
)
from helpers import assert_error
from pgbouncer import PgBouncer
from servers import stop_process

from todo_svc.api.errors import PLAIN_DETAIL

AUTH_LIMIT = 10  # per client address and minute, as in production
# Each test calls from its own loopback address, so its auth requests have a count of their own.
FLOW, SESSIONS, LOGOUT, LIMITS, ERRORS, LOAD = (f"127.0.0.{n}" for n in range(11, 17))
LOGIN, REFRESH = "/api/v1/auth/login", "/api/v1/auth/refresh"


@dataclass
class Topology:
    gateway: Gateway
    instances: list[Instance]
    database_url: str  # direct, not through PgBouncer
    drain_seconds: float


def instance_environment(database_url: str, key_prefix: str, drain_seconds: float) -> dict[str, str]:
    return {
        "ENVIRONMENT": "production",  # as deployed: no migration at start, JSON logs
        "DATABASE_URL": database_url,
        "DATABASE_POOLER": "transaction",
        "JWT_SECRET_KEY": SECRET,
        "BCRYPT_ROUNDS": "4",
        "WORKERS": "1",
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": key_prefix,
        "TRUSTED_PROXIES": "127.0.0.1",  # the gateway
        "RATE_LIMIT_AUTH": f"{AUTH_LIMIT}/minute",
        "RATE_LIMIT_TASKS": "1000000/minute",
        "SHUTDOWN_DRAIN_SECONDS": str(drain_seconds),
    }


async def delete_redis_keys(prefix: str) -> None:
    store = redis.Redis.from_url(REDIS_URL)
    try:
        if keys := [key async for key in store.scan_iter(match=f"{prefix}*")]:
            await store.delete(*keys)
    finally:
        await store.aclose()


async def stop_all(instances: list[Instance]) -> None:
    """Stop without draining: `todo-svc serve` stops at once on a second SIGTERM."""
    running = [i.process for i in instances if i.process is not None and i.process.returncode is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    await asyncio.gather(*(stop_process(process) for process in running))


@pytest.fixture(scope="module")
async def topology(pgbouncer: PgBouncer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Topology]:
    folder = tmp_path_factory.mktemp("topology")
    database_url = await create_postgres_database()
    key_prefix = f"todo-svc-topology-{uuid.uuid4().hex[:12]}"
    # Longer than nginx keeps an idle connection to an instance, as in production (5 s and 4 s).
    drain_seconds = config_seconds("keepalive_timeout") + 1
    try:
        pooled_url = pgbouncer.url_for(database_url)
        upgrade = await asyncio.to_thread(
            run_cli, "db", "upgrade", database_url=pooled_url, cwd=folder, DATABASE_POOLER="transaction"
        )
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
        environment = instance_environment(pooled_url, key_prefix, drain_seconds)
        instances = [Instance(name, free_port(), environment, folder) for name in ("app-1", "app-2")]
        async with AsyncExitStack() as stack:
            stack.push_async_callback(stop_all, instances)
            await asyncio.gather(*(instance.start() for instance in instances))
            ports = [instance.port for instance in instances]
            gateway = await stack.enter_async_context(running_gateway(folder / "nginx", free_port(), ports))
            yield Topology(gateway, instances, database_url, drain_seconds)
    finally:
        await drop_postgres_database(database_url)
        await delete_redis_keys(key_prefix)


async def test_tasks_through_the_gateway_reach_both_instances(topology: Topology) -> None:
    async with client(topology.gateway.url, FLOW) as api:
        account = await register(api)
        login = await api.post(LOGIN, json={"email": account.email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        answers = [login]
        for number in range(3):
            created = await api.post(account.tasks_url, json={"title": f"task {number}"}, headers=headers)
            assert created.status_code == 201, created.text
            fetched = await api.get(created.headers["location"], headers=headers)
            completed = await api.patch(f"{created.headers['location']}/complete", headers=headers)
            assert (fetched.status_code, completed.status_code) == (200, 200)
            assert completed.json()["completed"] is True
            answers += [created, fetched, completed]
        listed = await api.get(account.tasks_url, headers={**headers, "X-Request-ID": "topology-flow-list"})
    assert listed.status_code == 200
    assert listed.json()["total"] == 3
    assert listed.headers["x-request-id"] == "topology-flow-list"  # the client's id, end to end
    assert (await topology.gateway.entry("topology-flow-list"))["upstream"]
    where = await served_by(topology.instances, [answer.headers["x-request-id"] for answer in answers])
    assert set(where) == {"app-1", "app-2"}, where


async def test_refresh_token_reuse_is_seen_by_the_other_instance(topology: Topology) -> None:
    first, second = topology.instances
    async with client(topology.gateway.url, SESSIONS) as api:
        account = await register(api)
    async with client(first.url, SESSIONS) as on_first, client(second.url, SESSIONS) as on_second:
        rotated = await on_first.post(REFRESH, json={"refresh_token": account.refresh_token})
        assert rotated.status_code == 200, rotated.text
        assert_error(await on_second.post(REFRESH, json={"refresh_token": account.refresh_token}), 401)
        # The replay revoked the whole family, the token just issued by the first instance too.
        successor = await on_first.post(REFRESH, json={"refresh_token": rotated.json()["refresh_token"]})
        assert_error(successor, 401)


async def test_logout_on_one_instance_holds_on_the_other(topology: Topology) -> None:
    first, second = topology.instances
    async with client(topology.gateway.url, LOGOUT) as api:
        account = await register(api)
    async with client(first.url, LOGOUT) as on_first, client(second.url, LOGOUT) as on_second:
        body = {"refresh_token": account.refresh_token}
        logout = await on_first.post("/api/v1/auth/logout", json=body, headers=account.headers)
        assert logout.status_code == 204, logout.text
        assert_error(await on_second.post(REFRESH, json=body), 401)


async def test_auth_limit_is_one_count_across_instances(topology: Topology) -> None:
    """A client's own X-Forwarded-For never reaches the service: nginx sends the address it saw."""
    async with client(topology.gateway.url, LIMITS) as api:
        answers = [
            await api.post(
                LOGIN,
                json={"email": f"nobody-{number}@example.org", "password": "not the password"},
                headers={"X-Forwarded-For": f"198.51.100.{number}", "X-Request-ID": f"limits-{number}"},
            )
            for number in range(AUTH_LIMIT + 1)
        ]
    assert [answer.status_code for answer in answers] == [401] * AUTH_LIMIT + [429]
    assert_error(answers[-1], 429)
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    where = await served_by(topology.instances, [f"limits-{number}" for number in range(AUTH_LIMIT + 1)])
    assert set(where) == {"app-1", "app-2"}, where


async def test_gateway_errors_have_the_api_body(topology: Topology) -> None:
    gateway, limit = topology.gateway, 1024 * 1024  # the service's MAX_REQUEST_BODY_BYTES
    async with client(gateway.url, ERRORS) as api:
        account = await register(api)
        at_limit = ('{"title": "big", "description": "' + "x" * limit)[: limit - 2].encode() + b'"}'
        json_headers = {**account.headers, "Content-Type": "application/json"}
        read = await api.post(account.tasks_url, content=at_limit, headers=json_headers)
        assert_error(read, 400)  # read by the API: the description is too long
        assert (await gateway.entry(read.headers["x-request-id"]))["upstream"]

        refused = await api.post(account.tasks_url, content=at_limit + b" ", headers=json_headers)
        assert assert_error(refused, 413)["detail"] == PLAIN_DETAIL[413]  # as the API words it
        assert not (await gateway.entry(refused.headers["x-request-id"]))["upstream"]  # nginx answered

        long_query = await api.get(account.tasks_url, params={"q": "a" * 18 * 1024}, headers=account.headers)
        assert long_query.status_code in (200, 400), long_query.text  # the API's answer, not nginx's 414
        assert (await gateway.entry(long_query.headers["x-request-id"]))["upstream"]

        assert_error(await raw_get(gateway.url, f"{account.tasks_url}?q={'a' * 100 * 1024}"), 414)
        assert assert_error(await api.get("/metrics"), 404)["detail"] == PLAIN_DETAIL[404]

        # An id the service would not take is replaced, by the same id at both layers.
        unauthorised = await api.get("/api/v1/users/me", headers={"X-Request-ID": "not a sane id"})
        body = assert_error(unauthorised, 401)
        assert body["request_id"] != "not a sane id"
        assert (await gateway.entry(body["request_id"]))["status"] == 401


async def test_no_instance_answering_is_a_json_error(tmp_path: Path) -> None:
    nowhere = [free_port(), free_port()]
    async with (
        running_gateway(tmp_path / "nginx", free_port(), nowhere) as gateway,
        client(gateway.url, "127.0.0.1") as api,
    ):
        answers = [await api.get("/api/v1/users/me"), await api.post(LOGIN, json={})]
    for answer in answers:
        assert answer.status_code in (502, 503, 504)
        assert_error(answer, answer.status_code)


async def test_rolling_restart_under_load_fails_no_request(
    topology: Topology, capsys: pytest.CaptureFixture[str]
) -> None:
    instances, stop = topology.instances, asyncio.Event()
    async with client(topology.gateway.url, LOAD) as api:
        accounts = [await register(api) for _ in range(4)]
        seeds = {"tasks": [{"title": f"seed {number}"} for number in range(3)]}
        seeded = [await api.post(f"{a.tasks_url}/batch", json=seeds, headers=a.headers) for a in accounts]
    # Paced clients leave nginx's connections to the instances idle between requests: an instance
    # that closed such a connection while nginx wrote a request onto it would fail that request.
    task_ids = [[task["id"] for task in batch.json()["items"]] for batch in seeded]
    drivers = [
        asyncio.create_task(mixed_load(topology.gateway.url, LOAD, account, ids, stop, pause))
        for account, ids in zip(accounts, task_ids, strict=True)
        for pause in (0, 0.05)
    ]
    try:
        await asyncio.sleep(1)
        restarts = [await instance.restart(topology.drain_seconds) for instance in instances]
        await asyncio.sleep(1)
    finally:
        stop.set()
        counts = sum(await asyncio.gather(*drivers), Counter[str]())

    served = {i.name: sum(line["route"].startswith("/api/") for line in i.served()) for i in instances}
    retried = sum(", " in line["upstream"] for line in topology.gateway.log())
    with capsys.disabled():  # the counts belong in every run's output, not only with -s
        print(f"\nrolling restart: {dict(counts)}; served {served}; retried by nginx {retried}; {restarts}")
    assert [kind for kind in counts if kind.startswith("failed")] == []
    assert all(counts[kind] > 0 for kind in ("create", "list", "get", "complete"))
    assert all(served.values())
    assert [exit_status for exit_status, _ in restarts] == [0, 0]
    # While it drained, each instance said so (its readiness) and went on serving.
    assert all(readiness.startswith("503") and "draining" in readiness for _, readiness in restarts)
    connection = await asyncpg.connect(topology.database_url)
    try:
        stored = await connection.fetchval("SELECT count(*) FROM tasks WHERE title LIKE 'load %'")
    finally:
        await connection.close()
    assert stored == counts["create"]  # every answered create is stored, once
