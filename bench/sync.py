"""How the cost of list and sync requests grows with the number of tasks a user has.

    .venv/bin/python bench/sync.py [--tasks 100000] [--requests 60] [--warmup 5] [--keep-db]

One run: a fresh database `todo_bench_<random>` (dropped at the end, also on
failure or Ctrl-C, unless --keep-db), migrations, one user with 20 tasks and one
with --tasks, seeded in bulk (COPY); access tokens minted with the server's
secret; todo-svc on one Granian worker pinned to one core, this client on the
other. Every request is sequential, on one keep-alive connection per user;
each number is the median of --requests after --warmup unmeasured ones, 50
tasks a page, except the walks, which read every task 100 a page and are timed
whole. Every 1000th title holds the search word, so `q` matches 1 task in
1,000. The feed of changes is read last, after 10 edits and 2 deletes.

Requests the server does not offer yet print `n/a`: cursors when the list body
has no `next_cursor`, the changes feed when it answers 404, 405 or 422.

It prints one markdown table and writes the same as JSON (bench/results/sync.json).
Exit status 1 when a server died, a request answered anything but 2xx (the n/a
probes aside) or a cursor walk skipped or repeated a task.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg

from bench.run import (
    RESULTS,
    BenchError,
    OneDatabase,
    Run,
    access_token,
    check_alive,
    cleaned_up,
    copy_rows,
    create_database,
    git_revision,
    migrate,
    password_hash,
    start_todo_svc,
    stop_server,
    written,
)

SMALL_TASKS = 20
PAGE = 50  # the page of every measured request
WALK_PAGE = 100  # the page of the walks through every task
SEARCH_WORD = "quartz"  # in every 1000th title, in no other title or description
EDITS, DELETES = 10, 2
NOT_OFFERED = frozenset({404, 405, 422})  # the changes feed is not there yet
# One user makes every request here, far beyond the per-user limit meant for clients.
RATE_LIMIT = "RATE_LIMIT_TASKS=1000000/minute"


class NotOffered(Exception):
    """The server does not offer this request yet: the table says n/a."""


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class User:
    """A seeded user, and one keep-alive connection to the server as that user."""

    id: int
    first_task: int
    tasks: int
    token: str
    url: str
    problems: list[str]
    conn: http.client.HTTPConnection = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)

    @property
    def base(self) -> str:
        return f"/api/v1/users/{self.id}/tasks"

    @property
    def task_ids(self) -> range:
        return range(self.first_task, self.first_task + self.tasks)

    def call(self, method: str, path: str, body: Any = None, expect_2xx: bool = True) -> Answer:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self.conn.request(method, self.base + path, body=data, headers=headers)
                response = self.conn.getresponse()
                content = response.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected) as exc:
                # The server closes a connection left idle (this user's while the other's run):
                # open a new one, once.
                self.conn.close()
                if attempt == 2:
                    raise BenchError(f"{method} {self.base}{path}: {exc!r}") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise BenchError(f"{method} {self.base}{path}: {exc!r}") from exc
        answer = Answer(response.status, content, time.perf_counter() - started)
        if expect_2xx and not 200 <= answer.status < 300:
            self.problems.append(f"{method} {self.base}{path}: {answer.status} {content[:200]!r}")
        return answer

    def median_ms(self, path: str, requests: int, warmup: int) -> float:
        for _ in range(warmup):
            self.call("GET", path)
        return 1000 * statistics.median(self.call("GET", path).seconds for _ in range(requests))


# --------------------------------------------------------------------------- data


def title_of(index: int) -> str:
    return f"Task {index} {SEARCH_WORD}" if index % 1000 == 1 else f"Task {index}"


async def seed(run: Run, hashed: str, sizes: list[int]) -> list[tuple[int, int]]:
    """Users 1, 2, ... with `sizes` tasks each, in bulk; their (first task id, task count)."""
    now = datetime.now(UTC)
    total = sum(sizes)
    users, tasks, spans = [], [], []
    next_id = 1
    for uid, size in enumerate(sizes, start=1):
        users.append((uid, f"sync{uid}@example.org", hashed, now, now))
        spans.append((next_id, size))
        for index in range(1, size + 1):
            tid = next_id + index - 1
            created = now - timedelta(seconds=total - tid)  # distinct, increasing with the id
            description = f"Step {index}: check the list, then write down what changed."
            tasks.append((tid, uid, title_of(index), description, tid % 3 == 0, 1, created, created))
        next_id += size
    conn = await asyncpg.connect(run.db_url())
    try:
        await copy_rows(conn, users, tasks)
    finally:
        await conn.close()
    return spans


# --------------------------------------------------------------------------- requests


def first_page(user: User, args: argparse.Namespace) -> float:
    return user.median_ms(f"?limit={PAGE}", args.requests, args.warmup)


def last_page_by_offset(user: User, args: argparse.Namespace) -> float:
    return user.median_ms(f"?limit={PAGE}&offset={max(user.tasks - PAGE, 0)}", args.requests, args.warmup)


def search(user: User, args: argparse.Namespace) -> float:
    return user.median_ms(f"?limit={PAGE}&q={quote(SEARCH_WORD)}", args.requests, args.warmup)


def walk_by_offset(user: User) -> list[int]:
    seen: list[int] = []
    offset = 0
    while True:
        answer = user.call("GET", f"?limit={WALK_PAGE}&offset={offset}")
        if answer.status != 200:
            return seen
        page = answer.json()
        seen += [item["id"] for item in page["items"]]
        offset += WALK_PAGE
        if len(page["items"]) < WALK_PAGE or offset >= page["total"]:
            return seen


def cursor_pages(user: User, limit: int, stop_after: int | None = None) -> tuple[list[int], str | None]:
    """Follow `next_cursor` from the first page, until the last page or `stop_after` tasks seen;
    the ids seen and the cursor that comes next."""
    answer = user.call("GET", f"?limit={limit}")
    if answer.status != 200:
        return [], None
    page = answer.json()
    if "next_cursor" not in page:
        raise NotOffered("the list has no next_cursor")
    seen = [item["id"] for item in page["items"]]
    most = user.tasks // limit + 10  # a server that ignores cursors would serve the first page forever
    for _ in range(most):
        cursor = page["next_cursor"]
        if cursor is None or (stop_after is not None and len(seen) >= stop_after):
            return seen, cursor
        answer = user.call("GET", f"?cursor={quote(cursor)}&limit={limit}")
        if answer.status != 200:
            return seen, None
        page = answer.json()
        seen += [item["id"] for item in page["items"]]
    raise BenchError(f"user {user.id}: the cursor walk did not end after {most} pages")


def walk_by_cursor(user: User) -> list[int]:
    return cursor_pages(user, WALK_PAGE)[0]


def timed_walks(
    user: User, walk: Callable[[User], list[int]], args: argparse.Namespace
) -> tuple[float, float, list[list[int]]]:
    """Walk every task, as often as it takes to make --requests requests (once for a large
    user); the median time of a walk in s, of a page in ms, and the ids of each walk."""
    pages = -(-user.tasks // WALK_PAGE) or 1
    repeats = max(1, args.requests // pages)
    for _ in range(args.warmup):
        user.call("GET", f"?limit={WALK_PAGE}")
    times, walks = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        walks.append(walk(user))
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    return seconds, 1000 * seconds / pages, walks


def check_walk(user: User, seen: list[int], how: str) -> str | None:
    """None when the walk saw every task exactly once, else what went wrong."""
    expected = set(user.task_ids)
    repeated = len(seen) - len(set(seen))
    missing = len(expected - set(seen))
    foreign = len(set(seen) - expected)
    if repeated or missing or foreign:
        return (
            f"user {user.id}: the walk by {how} saw {len(seen)} tasks of {user.tasks}: "
            f"{repeated} repeated, {missing} skipped, {foreign} not the user's"
        )
    return None


def cursor_at_depth(user: User, args: argparse.Namespace, depth: int) -> float:
    seen, cursor = cursor_pages(user, PAGE, stop_after=depth)
    if cursor is None:
        raise BenchError(f"user {user.id}: no cursor after {len(seen)} tasks (wanted {depth})")
    return user.median_ms(f"?cursor={quote(cursor)}&limit={PAGE}", args.requests, args.warmup)


def changes_since(user: User, args: argparse.Namespace) -> tuple[float, str | None]:
    """The feed since a token taken before EDITS edits and DELETES deletes; the median in ms, and
    what the feed got wrong, if anything."""
    answer = user.call("GET", "/changes?limit=50", expect_2xx=False)
    if answer.status in NOT_OFFERED:
        raise NotOffered(f"the changes feed answers {answer.status}")
    if answer.status != 200:
        user.problems.append(f"GET {user.base}/changes: {answer.status} {answer.body[:200]!r}")
        raise BenchError(f"user {user.id}: the changes feed answered {answer.status} without `since`")
    since = answer.json()["next_since"]
    ids = list(user.task_ids)
    step = max(len(ids) // (EDITS + DELETES), 1)
    chosen = ids[::step][: EDITS + DELETES]
    edited, deleted = chosen[:EDITS], chosen[EDITS:]
    for tid in edited:
        user.call("PATCH", f"/{tid}", {"title": f"Task {tid} edited"})
    for tid in deleted:
        user.call("DELETE", f"/{tid}")
    path = f"/changes?since={quote(since)}&limit=50"
    feed = user.call("GET", path).json()
    ms = user.median_ms(path, args.requests, args.warmup)
    got = sorted(item["id"] for item in feed.get("items", [])), sorted(feed.get("deleted", []))
    if got != (sorted(edited), sorted(deleted)):
        return ms, (
            f"user {user.id}: changes since the token: items {got[0]}, deleted {got[1]}; "
            f"expected {sorted(edited)} and {sorted(deleted)}"
        )
    return ms, None


# --------------------------------------------------------------------------- run


def measure(user: User, args: argparse.Namespace, large: bool, checks: list[str]) -> dict[str, Any]:
    """The rows of one user, in ms (walks in all: s); None for rows that do not apply to it."""
    page = user.call("GET", f"?limit={PAGE}")
    if page.status == 200 and page.json()["total"] != user.tasks:
        checks.append(f"user {user.id}: the list's total is {page.json()['total']}, not {user.tasks}")
    cells: dict[str, Any] = {"first": first_page(user, args)}
    cells["last_offset"] = last_page_by_offset(user, args) if large else None
    cells["search"] = search(user, args)
    cells["offset_total"], cells["offset_page"], walks = timed_walks(user, walk_by_offset, args)
    for seen in walks:
        if problem := check_walk(user, seen, "offset"):
            checks.append(problem)
    try:
        cells["cursor_depth"] = cursor_at_depth(user, args, user.tasks // 2) if large else None
        cells["cursor_total"], cells["cursor_page"], walks = timed_walks(user, walk_by_cursor, args)
        for seen in walks:
            if problem := check_walk(user, seen, "cursor"):
                user.problems.append(problem)
    except NotOffered as exc:
        print(f"-- user {user.id}: n/a, {exc}", flush=True)
        cells |= {"cursor_depth": "n/a" if large else None, "cursor_total": "n/a", "cursor_page": "n/a"}
    return cells


def rows_of(args: argparse.Namespace, small: dict[str, Any], big: dict[str, Any]) -> list[dict[str, Any]]:
    labels = [
        ("first", "first page", "ms"),
        ("last_offset", "last page by offset", "ms"),
        ("search", "`q` matching 1 task in 1,000", "ms"),
        ("offset_page", f"all tasks by offset, {WALK_PAGE} a page: a page", "ms"),
        ("offset_total", f"all tasks by offset, {WALK_PAGE} a page: in all", "s"),
        ("cursor_depth", f"cursor page at depth {args.tasks // 2:,}", "ms"),
        ("cursor_page", f"all tasks by cursor, {WALK_PAGE} a page: a page", "ms"),
        ("cursor_total", f"all tasks by cursor, {WALK_PAGE} a page: in all", "s"),
        ("changes", f"changes since a minute ago ({EDITS} edits, {DELETES} deletes)", "ms"),
    ]
    rows = []
    for key, label, unit in labels:
        value = big.get(key)
        ratio = value / small["first"] if unit == "ms" and isinstance(value, float) else None
        rows.append(
            {
                "request": label,
                "unit": unit,
                "small": rounded(small.get(key)),
                "big": rounded(value),
                "ratio": round(ratio, 1) if ratio is not None else None,
            }
        )
    return rows


def rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def cell(value: Any, unit: str) -> str:
    if value is None or isinstance(value, str):
        return value or "-"
    return f"{value:.3f} s" if unit == "s" else f"{value:.2f}"


def table(report: dict[str, Any]) -> str:
    sizes = report["meta"]["tasks"]
    lines = [
        f"| request | {sizes[0]:,}-task user (ms) | {sizes[1]:,}-task user (ms) "
        f"| ratio to the {sizes[0]:,}-task user's first page |",
        "|---|---:|---:|---:|",
    ]
    for row in report["rows"]:
        ratio = f"{row['ratio']:.1f}x" if row["ratio"] is not None else "-"
        lines.append(
            f"| {row['request']} | {cell(row['small'], row['unit'])} | {cell(row['big'], row['unit'])} "
            f"| {ratio} |"
        )
    return "\n".join(lines)


def bench(run: Run) -> dict[str, Any]:
    args = run.args
    started = time.monotonic()
    sizes = [SMALL_TASKS, args.tasks]
    asyncio.run(create_database(run))
    print(f"-- database {run.db_name}: migrating and seeding users of {sizes[0]:,} and {sizes[1]:,} tasks")
    migrate(run)
    hashed = asyncio.run(password_hash(args.bcrypt_rounds))
    spans = asyncio.run(seed(run, hashed, sizes))
    server = start_todo_svc(run, name="todo-svc-sync")
    if args.client_core is not None:
        os.sched_setaffinity(0, {args.client_core})
    now = datetime.now(UTC)
    problems: list[str] = []
    users = [
        User(uid, first, size, access_token(run, uid, f"sync{uid}@example.org", now), server.url, problems)
        for uid, (first, size) in enumerate(spans, start=1)
    ]
    checks: list[str] = []
    cells = []
    for user, large in zip(users, (False, True), strict=True):
        print(f"-- user {user.id} ({user.tasks:,} tasks): lists, walks, cursors", flush=True)
        cells.append(measure(user, args, large, checks))
    for user, found in zip(users, cells, strict=True):
        print(f"-- user {user.id}: {EDITS} edits, {DELETES} deletes, then the changes since", flush=True)
        try:
            found["changes"], wrong = changes_since(user, args)
            if wrong:
                checks.append(wrong)
        except NotOffered as exc:
            print(f"-- user {user.id}: n/a, {exc}", flush=True)
            found["changes"] = "n/a"
    check_alive(server, expected_workers=1)
    if server.died:
        problems.append(server.died)
    stop_server(run, server)
    return {
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "revision": git_revision(),
            "tasks": sizes,
            "requests": args.requests,
            "warmup": args.warmup,
            "page": PAGE,
            "walk_page": WALK_PAGE,
            "server_core": args.server_core,
            "client_core": args.client_core,
            "elapsed_s": round(time.monotonic() - started, 1),
        },
        "rows": rows_of(args, *cells),
        "checks": checks,
        "problems": problems,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks of the large user (default 100000)")
    parser.add_argument("--requests", type=int, default=60, help="measured requests per median (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests before each (default 5)")
    parser.add_argument("--keep-db", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--json", type=Path, default=RESULTS / "sync.json", help="where to write the JSON")
    parser.add_argument("--pool-size", type=int, default=10, help="DATABASE_POOL_SIZE (default 10)")
    parser.add_argument("--bcrypt-rounds", type=int, default=12, help="BCRYPT_ROUNDS (default 12)")
    parser.add_argument(
        "--server-env", action="append", default=[RATE_LIMIT], metavar="KEY=VALUE", help="server setting"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="an admin connection used to create and drop the database (env BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--server-core", type=int, default=0, help="CPU core of the server (default 0)")
    parser.add_argument("--client-core", type=int, default=1, help="CPU core of this client (default 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client to cores")
    args = parser.parse_args(argv)
    if args.tasks < 2 * PAGE or args.requests < 1 or args.warmup < 0:
        parser.error(f"--tasks must be at least {2 * PAGE}, --requests at least 1, --warmup at least 0")
    if args.no_pin or (os.cpu_count() or 1) < 2:
        args.server_core = args.client_core = None
    args.redis = False  # what bench/run.py's start_todo_svc reads
    return args


def main(argv: list[str] | None = None) -> int:
    run = OneDatabase(parse_args(argv))
    with cleaned_up(run):
        report = bench(run)
    meta = report["meta"]
    print(
        f"\ntodo-svc sync bench {meta['date']}  revision {meta['revision']}  median of {meta['requests']} "
        f"after {meta['warmup']} warm-up, {PAGE} a page  run {meta['elapsed_s']} s\n"
    )
    print(table(report))
    for line in report["checks"]:
        print(f"!! {line}")
    if report["problems"]:
        print("PROBLEMS:")
        for line in report["problems"][:20]:
            print(f"  !! {line}")
    return written(report, run.args.json)


if __name__ == "__main__":
    sys.exit(main())
