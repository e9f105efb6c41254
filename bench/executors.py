"""The statement executors compared on the hot task statements: the driver path (`db/database.py`),
SQLAlchemy Core on an `AsyncConnection`, and the ORM `AsyncSession`.

    .venv/bin/python bench/executors.py [--statements 20000] [--concurrency 1,16] [--rounds 2]

One run: a throwaway database `todo_bench_<random>` (dropped at the end, also on
failure), migrated by `todo-svc db upgrade` (bench/run.py's helpers), one user
with 20 tasks; the engine built as the service builds it
(`database_config(settings).get_engine()` with the settings bench/run.py serves
with) on uvloop, as in the service's worker. For each concurrency (the
statements split over that many asyncio tasks sharing the engine's pool), each
shape and each executor: a warm-up, then N timed statements; all of that
--rounds times, interleaved, each number the best of the rounds.

Executors, all in autocommit (no BEGIN/COMMIT on any path):
  driver           `RequestDatabase.statements()`: compiled once, asyncpg `fetch` on a pooled connection
  core-connection  `AsyncConnection.execute(statement, named)`: compiled cache, prepared statements
  core-driver-sql  `AsyncConnection.exec_driver_sql(sql, positional)`: no compiling, no type processing
  core-no-cache    `core-connection` with `compiled_cache=None`: compiled on every execution
  orm-session      `AsyncSession.execute` + `commit` (the service's session maker, bound to autocommit)

CPU µs/stmt is this process's CPU time over the timed statements (PostgreSQL's is
not in it): the client-side cost of each executor, and the steadiest number on a
busy machine. `cpu x` and `rate x` are the CPU per statement and the throughput
relative to the driver path at the same shape and concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import uvloop
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bench.run import BenchError, OneDatabase, cleaned_up, create_database, git_revision, migrate, server_env
from todo_svc.db import task_lists
from todo_svc.db import tasks as statements
from todo_svc.db.config import database_config
from todo_svc.db.database import CompiledStatement, RequestDatabase
from todo_svc.db.models import Task, User
from todo_svc.settings import Settings, load_settings

Executor = Callable[[CompiledStatement, dict[str, Any]], Awaitable[Sequence[Any]]]
TASKS = 20
NO_LOGIN = "!"  # the seeded user's password hash: no password matches it


@dataclass(frozen=True)
class Shape:
    statement: CompiledStatement
    params: Callable[[int, int], dict[str, Any]]  # (owner id, task id) -> the repository's parameters
    rows: int  # what every execution must return


SHAPES = {
    "get": Shape(statements.GET_OWNED, lambda owner, task: {"owner_id": owner, "task_id": task}, 1),
    "list": Shape(
        task_lists.list_page(False, False, "-created_at", keyset=False),
        lambda owner, _: {"owner_id": owner, "completed": None, "pattern": None, "limit": 51, "offset": 0},
        TASKS,
    ),
    "update": Shape(
        statements.update_owned("postgresql", frozenset({"title"}), False),
        lambda owner, task: {
            "owner_id": owner,
            "task_id": task,
            "title": f"Task {task}, renamed",
            "versions": [],
            "now": datetime.now(UTC),
        },
        1,
    ),
}


def executors(engine: AsyncEngine, make_session: Callable[..., AsyncSession]) -> dict[str, Executor]:
    dialect = engine.dialect
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    uncached = autocommit.execution_options(compiled_cache=None)
    database = RequestDatabase(engine, make_session)

    async def via_driver(statement: CompiledStatement, params: dict[str, Any]) -> Sequence[Any]:
        async with database.statements() as run:
            return await run.fetch_all(statement, **params)

    async def via_core(
        statement: CompiledStatement, params: dict[str, Any], on: AsyncEngine = autocommit
    ) -> Sequence[Any]:
        async with on.connect() as connection:
            return (await connection.execute(statement.statement, statement.named(dialect, params))).all()

    async def via_core_uncached(statement: CompiledStatement, params: dict[str, Any]) -> Sequence[Any]:
        return await via_core(statement, params, uncached)

    async def via_driver_sql(statement: CompiledStatement, params: dict[str, Any]) -> Sequence[Any]:
        sql, arguments = statement.positional(dialect, params)
        async with autocommit.connect() as connection:
            return (await connection.exec_driver_sql(sql, tuple(arguments))).all()

    async def via_session(statement: CompiledStatement, params: dict[str, Any]) -> Sequence[Any]:
        async with make_session(bind=autocommit) as session:
            rows = (await session.execute(statement.statement, statement.named(dialect, params))).all()
            await session.commit()
            return rows

    return {
        "driver": via_driver,
        "core-connection": via_core,
        "core-driver-sql": via_driver_sql,
        "core-no-cache": via_core_uncached,
        "orm-session": via_session,
    }


async def seed(engine: AsyncEngine) -> tuple[int, list[int]]:
    """One user and their tasks, created a second apart (so the list's order is the ids')."""
    now = datetime.now(UTC)
    user = {"email": "bench@example.org", "password_hash": NO_LOGIN, "created_at": now, "updated_at": now}
    async with engine.begin() as connection:
        owner = (await connection.execute(insert(User).values(user).returning(User.id))).scalar_one()
        rows = []
        for n in range(TASKS):
            created = now - timedelta(seconds=TASKS - n)
            rows.append(
                {"user_id": owner, "title": f"Task {n}", "completed": n % 3 == 0, "version": 1}
                | {"created_at": created, "updated_at": created}
            )
        task_ids = (await connection.execute(insert(Task).returning(Task.id), rows)).scalars().all()
    return owner, list(task_ids)


async def measure(
    execute: Executor, shape: Shape, owner: int, task_ids: list[int], count: int, concurrency: int
) -> dict[str, float]:
    """`count` statements over `concurrency` tasks; each task its own row, so updates never wait on a lock."""
    latencies: list[int] = []

    async def worker(index: int) -> None:
        params = shape.params(owner, task_ids[index % len(task_ids)])
        for _ in range(count // concurrency):
            start = time.perf_counter_ns()
            rows = await execute(shape.statement, params)
            latencies.append(time.perf_counter_ns() - start)
            if len(rows) != shape.rows:
                raise BenchError(f"{execute.__name__} returned {len(rows)} rows, expected {shape.rows}")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    latencies.sort()
    done = len(latencies)
    return {
        "rate": done / wall,
        "mean": statistics.fmean(latencies) / 1000,
        "p50": latencies[done // 2] / 1000,
        "p99": latencies[min(done - 1, done * 99 // 100)] / 1000,
        "cpu": cpu / done * 1e6,
    }


def best(kept: dict[str, float] | None, new: dict[str, float]) -> dict[str, float]:
    if kept is None:
        return new
    return {key: max(kept[key], new[key]) if key == "rate" else min(kept[key], new[key]) for key in new}


async def bench(settings: Settings, args: argparse.Namespace) -> dict[tuple[str, int, str], dict[str, float]]:
    config = database_config(settings)
    engine = config.get_engine()
    try:
        owner, task_ids = await seed(engine)
        paths = executors(engine, config.create_session_maker())
        results: dict[tuple[str, int, str], dict[str, float]] = {}
        for round_ in range(args.rounds):
            order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
            for concurrency in args.concurrency:
                for shape_name, shape in SHAPES.items():
                    for name in order:
                        execute = paths[name]
                        warmup = max(concurrency * 20, args.statements // 20)
                        await measure(execute, shape, owner, task_ids, warmup, concurrency)
                        result = await measure(execute, shape, owner, task_ids, args.statements, concurrency)
                        key = (shape_name, concurrency, name)
                        results[key] = best(results.get(key), result)
            print(f"-- round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        return results
    finally:
        await engine.dispose()


def table(results: dict[tuple[str, int, str], dict[str, float]]) -> str:
    names = list(dict.fromkeys(name for *_, name in results))  # the first round's order: driver first
    header = (
        f"{'executor':<16} {'shape':<7} {'conc':>4} {'stmt/s':>8} {'mean µs':>8} {'p50 µs':>8}"
        f" {'p99 µs':>8} {'cpu µs/stmt':>11} {'cpu x':>6} {'rate x':>6}"
    )
    lines = [header, "-" * len(header)]
    for shape, concurrency in dict.fromkeys((s, c) for s, c, _ in results):
        driver = results[(shape, concurrency, "driver")]
        for name in names:
            r = results[(shape, concurrency, name)]
            lines.append(
                f"{name:<16} {shape:<7} {concurrency:>4} {r['rate']:>8.0f} {r['mean']:>8.1f} {r['p50']:>8.1f}"
                f" {r['p99']:>8.1f} {r['cpu']:>11.1f} {r['cpu'] / driver['cpu']:>6.2f}"
                f" {r['rate'] / driver['rate']:>6.2f}"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--statements", type=int, default=20000, help="timed statements per combination")
    parser.add_argument(
        "--concurrency", default="1,16", help="comma-separated asyncio task counts (default 1,16)"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="interleaved rounds; the best counts (default 2)"
    )
    parser.add_argument(
        "--pool-size", type=int, default=10, help="DATABASE_POOL_SIZE (default 10, as bench/run.py)"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="an admin connection to create and drop the database (env BENCH_POSTGRES_URL)",
    )
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.statements < 1 or args.rounds < 1 or not args.concurrency or min(args.concurrency) < 1:
        parser.error("--statements, --rounds and every --concurrency must be at least 1")
    # What bench/run.py's helpers read from its own arguments.
    args.bcrypt_rounds, args.server_env, args.keep_db = 4, [], False
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = OneDatabase(args)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with cleaned_up(run, failures=(BenchError, OSError, asyncpg.PostgresError)):
        asyncio.run(create_database(run))
        migrate(run)
        settings = load_settings(server_env(run, port=0), env_file=None)
        results = uvloop.run(bench(settings, args))
    print(
        f"executors {started}  revision {git_revision()}  {args.statements} statements per combination"
        f"  pool {settings.database_pool_size}  best of {args.rounds} rounds  load {os.getloadavg()[0]:.2f}"
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
