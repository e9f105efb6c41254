"""Benchmark todo-svc against the raw ceiling app (bench/ceiling): PostgreSQL, Granian, wrk.

    .venv/bin/python bench/run.py [--duration 10] [--connections 32] [--scenarios list,get,...]

One run: a fresh database `todo_bench_<random>` (dropped at the end, also on
failure or Ctrl-C, unless --keep-db), migrations, 200 users x 20 tasks seeded
in bulk, access tokens minted with the server's secret, then todo-svc (Granian,
one worker) pinned to one core and wrk pinned to the other, scenario by
scenario; then the ceiling app the same way on the same database. It prints
one table and writes the same as JSON (bench/results/latest.json).

Exit status: 0 when every scenario ran and every response was 2xx; 1 when a
server died, a scenario could not run, or any response was not 2xx or a socket
error happened (the table says which). Performance targets never change it.

See bench/README.md for how to read the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import jwt

from todo_svc.core.passwords import PasswordHasher

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the suite's PgBouncer runner, on deploy/pgbouncer's configuration
from pgbouncer import PgBouncer, running_pgbouncer  # noqa: E402
from replication import ReplicationPair, replication_pair  # noqa: E402

LUA = ROOT / "bench" / "lua"
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent  # the venv's bin: todo-svc and granian live beside this python

# Enough users that the per-user task limit (300/minute by default) is never reached at the
# bench's rates (~1 request per user per second), and few enough that every token stays in
# the server's cache of verified tokens.
USERS = 2000
TASKS_PER_USER = 20
PASSWORD = "bench-password-0123456789"  # noqa: S105 - the seeded users' password, known to the bench
TOKEN_LIFETIME = timedelta(hours=2)  # longer than any run; the server only checks `exp`

# The mixed scenario's blend (weights in percent), passed to bench/lua/mixed.lua.
# Keys are request builders of bench/lua/common.lua.
MIXED_BLEND = {"list": 35, "get_one": 35, "complete": 15, "update": 10, "create": 5}
BLEND_LABELS = {"list": "list", "get_one": "get", "complete": "complete (set)", "update": "update (PUT)"}
BLEND_TEXT = ", ".join(
    f"{100 * weight / sum(MIXED_BLEND.values()):.0f}% {BLEND_LABELS.get(name, name)}"
    for name, weight in MIXED_BLEND.items()
)

# Order matters: writes change the data (complete/update flip rows, create adds
# tasks, so later list pages are fuller and their count covers more rows). So
# every phase runs reads first, then the login scenarios, then writes, then the
# mixed blend; and the database is reseeded to the same state before each app's
# phase, so todo-svc and the ceiling see identical data for every scenario.
ORDER = ["list", "get", "login", "storm", "complete", "update", "create", "mixed"]
LUA_SCRIPT = {
    "list": "list.lua",
    "get": "get.lua",
    "login": "login.lua",
    "complete": "complete.lua",
    "update": "update.lua",
    "create": "create.lua",
    "mixed": "mixed.lua",
}
CEILING_SCENARIOS = {"list", "get", "create", "complete", "update"}
# Targets of the issue (checked here for convenience; they never fail the run).
RATIO_TARGET = {"list": 0.5, "get": 0.5, "create": 0.4, "update": 0.4, "complete": 0.4}
P99_OVER_P50_MAX = 3.0
STORM_P99_MAX = 3.0
RSS_MAX_MIB = 120.0


class BenchError(Exception):
    """The run cannot go on; the message says why."""


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    died: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Run:
    args: argparse.Namespace
    db_name: str = field(default_factory=lambda: f"todo_bench_{secrets.token_hex(4)}")
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="todo-bench-")))
    servers: list[Server] = field(default_factory=list)
    clients: list[subprocess.Popen[str]] = field(default_factory=list)
    db_created: bool = False
    pooler: PgBouncer | None = None  # --pgbouncer: the servers reach the databases through it
    replication: ReplicationPair | None = None  # --replica: the primary (the databases) and its replica
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def admin_url(self) -> str:
        return self.replication.primary_url if self.replication else str(self.args.pg_url)

    @property
    def databases(self) -> tuple[str, str]:
        """todo-svc's database and the ceiling's: the same schema and data, written to apart."""
        return self.db_name, f"{self.db_name}_ceiling"

    def db_url(self, name: str | None = None) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name or self.db_name}"

    def server_db_url(self, name: str | None = None) -> str:
        """The database as the servers reach it: directly, or through the pooler."""
        url = self.db_url(name)
        return self.pooler.url_for(url) if self.pooler else url

    @property
    def users_file(self) -> Path:
        return self.workdir / "users.tsv"


class OneDatabase(Run):
    """A run with one database instead of the pair (no ceiling app)."""

    @property
    def databases(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.db_name,)


# --------------------------------------------------------------------------- tools and processes


def pin(core: int | None) -> list[str]:
    return ["taskset", "-c", str(core)] if core is not None else []


def ensure_tools() -> None:
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
        if shutil.which("wrk") is None:
            raise BenchError("wrk is not installed and `apt-get install -y wrk` did not install it")
    for tool in ("taskset",):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (util-linux)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(run: Run, name: str, command: list[str], env: dict[str, str], port: int) -> Server:
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*pin(run.args.server_core), *command],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C reaches only us, we stop it
        )
    server = Server(name, proc, port, log)
    run.servers.append(server)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode} while starting:\n{tail(log)}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise BenchError(f"{name} did not answer /health within 60 s:\n{tail(log)}")


def stop_server(run: Run, server: Server) -> None:
    """SIGTERM to Granian's main process (it stops its workers), SIGKILL to the group if it hangs."""
    if server in run.servers:
        run.servers.remove(server)
    pgid = server.proc.pid  # start_new_session: the group id is the server's pid
    if server.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print(f"!! {server.name} did not stop within 15 s: killing its process group", flush=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)  # workers left behind, if any
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(timeout=5)


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def proc_status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def workers(server: Server) -> list[int]:
    """Granian's worker processes: the children of the server process (not multiprocessing helpers)."""
    found = []
    for pid in children(server.proc.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline and b"forkserver" not in cmdline:
            found.append(pid)
    return found


def memory(server: Server) -> dict[str, Any]:
    """Peak (VmHWM) and current (VmRSS) resident memory of each worker, in MiB."""

    def mib(value: str | None) -> float | None:
        return round(int(value.split()[0]) / 1024, 1) if value else None

    per_worker = []
    for pid in workers(server):
        status = proc_status(pid)
        per_worker.append(
            {"pid": pid, "peak_mib": mib(status.get("VmHWM")), "rss_mib": mib(status.get("VmRSS"))}
        )
    main = proc_status(server.proc.pid)
    peaks = [w["peak_mib"] for w in per_worker if w["peak_mib"] is not None]
    return {
        "workers": per_worker,
        "peak_per_worker_mib": max(peaks) if peaks else None,
        "main_process_peak_mib": mib(main.get("VmHWM")),
    }


def database_reads(server: Server) -> dict[str, float]:
    """todo-svc's `todo_db_reads_total` by target, from its /metrics: did the replica serve?"""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:  # noqa: S310 - our own
        text = response.read().decode()
    reads = {}
    for line in text.splitlines():
        if line.startswith("todo_db_reads_total{"):
            labels, _, value = line.rpartition(" ")
            reads[labels.partition('target="')[2].partition('"')[0]] = float(value)
    return reads


def check_alive(server: Server, expected_workers: int) -> None:
    if server.died:
        return
    if server.proc.poll() is not None:
        server.died = f"{server.name} exited with status {server.proc.returncode}"
    elif len(workers(server)) < expected_workers:
        server.died = f"{server.name} has {len(workers(server))} of {expected_workers} workers left"
    if server.died:
        print(f"!! {server.died}; log tail:\n{tail(server.log)}", flush=True)


# --------------------------------------------------------------------------- database


async def create_database(run: Run) -> None:
    conn = await asyncpg.connect(run.admin_url)
    try:
        for name in run.databases:
            await conn.execute(f'CREATE DATABASE "{name}"')
            run.db_created = True
    finally:
        await conn.close()


async def drop_database(run: Run) -> None:
    conn = await asyncpg.connect(run.admin_url)
    try:
        for name in run.databases:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def migrate(run: Run) -> None:
    for database in run.databases:
        result = subprocess.run(
            [str(BIN / "todo-svc"), "db", "upgrade"],
            cwd=ROOT,
            env=server_env(run, port=0, database=database),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(f"`todo-svc db upgrade` failed:\n{result.stdout}{result.stderr}")


async def password_hash(rounds: int) -> str:
    """One hash with todo-svc's own scheme (pre-hash + bcrypt), reused for every seeded user."""
    hasher = PasswordHasher(rounds=rounds, workers=1)
    try:
        hashed = await hasher.hash(PASSWORD)
        if not await hasher.verify(PASSWORD, hashed):
            raise BenchError("todo-svc's PasswordHasher does not verify its own hash")
        return hashed
    finally:
        hasher.close()


def email_of(user_id: int) -> str:
    return f"bench{user_id:03d}@example.org"


def task_ids(user_id: int) -> list[int]:
    first = (user_id - 1) * TASKS_PER_USER + 1
    return list(range(first, first + TASKS_PER_USER))


async def seed(run: Run, hashed: str, database: str) -> None:
    """Empty the tables and insert the users and tasks in bulk (COPY), always with the same ids."""
    now = datetime.now(UTC)
    users = [(uid, email_of(uid), hashed, now, now) for uid in range(1, USERS + 1)]
    total = USERS * TASKS_PER_USER
    tasks = []
    for uid in range(1, USERS + 1):
        for tid in task_ids(uid):
            created = now - timedelta(seconds=total - tid)  # distinct, increasing with the id
            tasks.append((tid, uid, f"Task {tid} of user {uid}", None, tid % 3 == 0, 1, created, created))
    conn = await asyncpg.connect(run.db_url(database))
    try:
        await copy_rows(conn, users, tasks)
    finally:
        await conn.close()


USER_COLUMNS = ["id", "email", "password_hash", "created_at", "updated_at"]
TASK_COLUMNS = ["id", "user_id", "title", "description", "completed", "version", "created_at", "updated_at"]


async def copy_rows(
    conn: asyncpg.Connection, users: list[tuple[Any, ...]], tasks: list[tuple[Any, ...]]
) -> None:
    """Empty the tables, then COPY the rows in (USER_COLUMNS, TASK_COLUMNS, ids given), move the
    id sequences past the last ids and refresh the planner's statistics."""
    await conn.execute("TRUNCATE users RESTART IDENTITY CASCADE")
    await conn.copy_records_to_table("users", records=users, columns=USER_COLUMNS)
    await conn.copy_records_to_table("tasks", records=tasks, columns=TASK_COLUMNS)
    for table, rows in (("users", users), ("tasks", tasks)):
        last = max(row[0] for row in rows)
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {int(last)})")
    await conn.execute("VACUUM ANALYZE users")
    await conn.execute("VACUUM ANALYZE tasks")


def access_token(run: Run, user_id: int, email: str, now: datetime) -> str:
    """An access token as todo-svc issues it (sub as a string, email, iat, exp, jti; HS256)."""
    claims = {
        "sub": str(user_id),
        "email": email,
        "iat": int(now.timestamp()),
        "exp": int((now + TOKEN_LIFETIME).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, run.secret, algorithm="HS256")


def write_users_file(run: Run) -> None:
    """One line per user: id, email, access token (access_token) and task ids, for the Lua scripts."""
    now = datetime.now(UTC)
    lines = []
    for uid in range(1, USERS + 1):
        token = access_token(run, uid, email_of(uid), now)
        ids = ",".join(map(str, task_ids(uid)))
        lines.append(f"{uid}\t{email_of(uid)}\t{token}\t{ids}\n")
    run.users_file.write_text("".join(lines))


# --------------------------------------------------------------------------- servers


def server_env(run: Run, port: int, database: str | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "JWT_SECRET_KEY": run.secret,
        "DATABASE_URL": run.server_db_url(database),
        "DATABASE_POOLER": "transaction" if run.pooler else "none",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
        "DATABASE_POOL_SIZE": str(run.args.pool_size),
        "BCRYPT_ROUNDS": str(run.args.bcrypt_rounds),
    }
    for item in run.args.server_env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def start_todo_svc(run: Run, name: str = "todo-svc") -> Server:
    """todo-svc with its default limits, behind the bench as its trusted gateway; Redis with --redis.

    `name` names it in messages and its log (bench/results/<name>.log)."""
    port = free_port()
    env = {**server_env(run, port), "TRUSTED_PROXIES": "127.0.0.1"}
    if run.args.redis:
        env |= {"REDIS_URL": run.args.redis_url, "REDIS_KEY_PREFIX": f"todo-bench-{run.db_name}"}
    if run.replication:
        env["DATABASE_REPLICA_URLS"] = run.replication.replica_url_for(run.db_url())
    return start_server(run, name, [str(BIN / "todo-svc"), "serve"], env, port)


def start_ceiling(run: Run) -> Server:
    port = free_port()
    command = [
        str(BIN / "granian"),
        "--interface", "asgi",
        "--loop", "uvloop",
        "--workers", "1",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--log-level", "warning",
        "bench.ceiling.app:app",
    ]  # fmt: skip
    return start_server(run, "ceiling", command, server_env(run, port, run.databases[1]), port)


# --------------------------------------------------------------------------- wrk


def wrk_command(run: Run, script: str, url: str, connections: int, seconds: int) -> list[str]:
    args = [str(run.users_file), PASSWORD, ",".join(f"{k}={v}" for k, v in MIXED_BLEND.items())]
    return [
        *pin(run.args.client_core),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        f"{run.args.timeout}s",
        "-s",
        str(LUA / script),
        url,
        "--",
        *args,
    ]


def start_wrk(run: Run, script: str, url: str, connections: int, seconds: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        wrk_command(run, script, url, connections, seconds),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    run.clients.append(proc)
    return proc


def finish_wrk(run: Run, proc: subprocess.Popen[str], seconds: int, connections: int) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=seconds + run.args.timeout + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += "\nwrk did not finish in time"
    run.clients.remove(proc)  # on any other exception it stays listed, and cleanup() kills it
    line = next((x for x in out.splitlines() if x.startswith("@@bench ")), None)
    if line is None:
        return {"failed": f"wrk exited with {proc.returncode} and no report: {(err or out).strip()[-500:]}"}
    raw = json.loads(line.removeprefix("@@bench "))
    seconds_run = raw["duration_us"] / 1e6
    p50, p99 = raw["p50_us"] / 1000, raw["p99_us"] / 1000
    return {
        "connections": connections,
        "duration_s": round(seconds_run, 2),
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds_run, 1) if seconds_run else 0.0,
        "p50_ms": round(p50, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "p99_over_p50": round(p99 / p50, 2) if p50 else None,
        "non2xx": raw["non2xx"],
        "socket_errors": {k: raw[k] for k in ("connect", "read", "write", "timeout") if raw[k]},
        "statuses": raw["statuses"],
        "sample": raw["sample"],
    }


def wrk(run: Run, script: str, url: str, connections: int, seconds: int) -> dict[str, Any]:
    return finish_wrk(run, start_wrk(run, script, url, connections, seconds), seconds, connections)


def connections_for(run: Run, scenario: str) -> int:
    return int(run.args.login_connections if scenario == "login" else run.args.connections)


def cpu_seconds(server: Server) -> float:
    """CPU time (user + system, all threads) used so far by the server's workers."""
    ticks = 0
    for pid in workers(server):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def measured_wrk(run: Run, server: Server, script: str, conns: int, seconds: int) -> dict[str, Any]:
    """A wrk run, plus how busy the server's workers were (100% = one core saturated) and CPU per request.

    cpu_pct well under 100 means the server was not the bottleneck: something else held its core.
    """
    cpu, start = cpu_seconds(server), time.monotonic()
    result = wrk(run, script, server.url, conns, seconds)
    cpu, wall = cpu_seconds(server) - cpu, time.monotonic() - start
    if "failed" not in result:
        result["server_cpu_pct"] = round(100 * cpu / wall, 1)
        result["server_cpu_us_per_request"] = (
            round(1e6 * cpu / result["requests"]) if result["requests"] else None
        )
    return result


def measure(run: Run, server: Server, scenario: str) -> dict[str, Any]:
    """A short warm-up, then the measured run."""
    conns, seconds = connections_for(run, scenario), int(run.args.duration)
    if run.args.warmup > 0:
        wrk(run, LUA_SCRIPT[scenario], server.url, conns, min(int(run.args.warmup), seconds))
    return measured_wrk(run, server, LUA_SCRIPT[scenario], conns, seconds)


def storm(run: Run, server: Server) -> dict[str, dict[str, Any]]:
    """List p99 alone, then with a login wrk at full rate running over the whole list run."""
    conns, logins, seconds = (
        int(run.args.connections),
        int(run.args.login_connections),
        int(run.args.duration),
    )
    if run.args.warmup > 0:
        wrk(run, "list.lua", server.url, conns, min(int(run.args.warmup), seconds))
    idle = measured_wrk(run, server, "list.lua", conns, seconds)
    login = start_wrk(run, "login.lua", server.url, logins, seconds + 2)
    time.sleep(1)  # the storm is on before the list run starts and outlasts it
    during = measured_wrk(run, server, "list.lua", conns, seconds)  # its CPU includes the logins
    return {
        "storm/list-idle": idle,
        "storm/list": during,
        "storm/login": finish_wrk(run, login, seconds + 2, logins),
    }


def phase(run: Run, server: Server, scenarios: list[str]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        if server.died:
            results[scenario] = {"failed": f"not run: {server.died}"}
            continue
        label = f"{server.name} {scenario}"
        print(f"-- {label} ({run.args.duration} s) ...", flush=True)
        current = storm(run, server) if scenario == "storm" else {scenario: measure(run, server, scenario)}
        check_alive(server, expected_workers=1)
        for result in current.values():
            if server.died:
                result["server_died"] = server.died
        results.update(current)
    return results


# --------------------------------------------------------------------------- report


def best_of(kept: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> None:
    """Keep, per scenario, the round with the most requests per second (failures always show)."""
    for name, result in new.items():
        old = kept.get(name)
        if (
            old is None
            or "failed" in result
            or ("failed" not in old and result.get("rps", 0) > old.get("rps", 0))
        ):
            kept[name] = result


def errors_of(result: dict[str, Any]) -> str:
    """The non-2xx count, `+Nsock` for socket errors and timeouts, `!!` when anything went wrong."""
    if "failed" in result:
        return "FAILED"
    text = str(result["non2xx"])
    if result["socket_errors"]:
        text += f"+{sum(result['socket_errors'].values())}sock"
    if result["non2xx"] or result["socket_errors"] or result.get("server_died"):
        text += " !!"
    return text


def fmt(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def table(report: dict[str, Any]) -> str:
    ours, ceiling = report["todo_svc"], report["ceiling"]
    head = (
        f"{'scenario':<16}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p99/p50':>8}{'cpu%':>6} "
        f"{'non-2xx':>12}{'ceil req/s':>11}{'ceil p99':>9}{'cpu%':>6} {'ceil non-2xx':>12}{'ratio':>7}"
    )
    rows = [head, "-" * len(head)]
    for name, result in ours.items():
        if "failed" in result:
            rows.append(f"{name:<16}  FAILED: {result['failed']}")
            continue
        ceil = ceiling.get(name)
        ceil_ok = ceil is not None and "failed" not in ceil
        ratio = report["ratios"].get(name)
        rows.append(
            f"{name:<16}{result['connections']:>6}{result['rps']:>9.1f}{result['p50_ms']:>9.2f}"
            f"{result['p99_ms']:>9.2f}{fmt(result['p99_over_p50'], '.2f'):>8}"
            f"{fmt(result.get('server_cpu_pct'), '.0f'):>6} {errors_of(result):>12}"
            f"{fmt(ceil['rps'] if ceil_ok else None):>11}"
            f"{fmt(ceil['p99_ms'] if ceil_ok else None, '.2f'):>9}"
            f"{fmt(ceil.get('server_cpu_pct') if ceil_ok else None, '.0f'):>6} "
            f"{(errors_of(ceil) if ceil else '-'):>12}{fmt(ratio, '.2f'):>7}"
        )
    for name, result in ceiling.items():
        if name not in ours:
            rows.append(f"{name:<16}  (ceiling only) {result}")
    return "\n".join(rows)


def summary_lines(report: dict[str, Any]) -> list[str]:
    ours = report["todo_svc"]
    lines = []
    if "mixed" in ours:
        lines.append(f"mixed blend: {BLEND_TEXT}")
    storm_result = report.get("storm")
    if storm_result:
        lines.append(
            f"login storm: list p99 {fmt(storm_result['list_p99_idle_ms'], '.2f')} ms idle -> "
            f"{fmt(storm_result['list_p99_storm_ms'], '.2f')} ms during the storm "
            f"(x{fmt(storm_result['ratio'], '.2f')}); list c={storm_result['list_connections']}, "
            f"login c={storm_result['login_connections']}, "
            f"{fmt(storm_result['login_rps'])} logins/s during the storm"
        )
    if reads := report["meta"].get("database_reads"):
        where = ", ".join(f"{target} {count:.0f}" for target, count in reads.items())
        lines.append(f"todo-svc's reads by where they ran: {where}")
    for app in ("todo_svc", "ceiling"):
        rss = report["rss"].get(app)
        if rss:
            lines.append(
                f"peak RSS per worker ({app}, VmHWM after its phase): {fmt(rss['peak_per_worker_mib'])} MiB "
                f"over {len(rss['workers'])} worker(s); "
                f"Granian main process {fmt(rss['main_process_peak_mib'])} MiB"
            )
    return lines


def targets(report: dict[str, Any]) -> list[tuple[bool, str]]:
    ours, ratios = report["todo_svc"], report["ratios"]
    checks: list[tuple[bool, str]] = []
    for name, minimum in RATIO_TARGET.items():
        if ratios.get(name) is not None:
            checks.append((ratios[name] >= minimum, f"{name}: {ratios[name]:.2f} x ceiling >= {minimum}"))
    for name, result in ours.items():
        if name in ("login", "storm/login") or "failed" in result or result.get("p99_over_p50") is None:
            continue
        value = result["p99_over_p50"]
        checks.append((value <= P99_OVER_P50_MAX, f"{name}: p99/p50 {value:.2f} <= {P99_OVER_P50_MAX}"))
    bad = [
        f"{n} {errors_of(r)}" for n, r in ours.items() if "failed" in r or r["non2xx"] or r["socket_errors"]
    ]
    checks.append((not bad, f"zero non-2xx and socket errors ({', '.join(bad) or 'none'})"))
    storm_result = report.get("storm")
    if storm_result and storm_result["ratio"] is not None:
        ratio = storm_result["ratio"]
        checks.append(
            (ratio <= STORM_P99_MAX, f"list p99 during login storm {ratio:.2f} x idle <= {STORM_P99_MAX}")
        )
    rss = report["rss"].get("todo_svc")
    if rss and rss["peak_per_worker_mib"] is not None:
        peak = rss["peak_per_worker_mib"]
        checks.append((peak <= RSS_MAX_MIB, f"peak RSS per worker {peak:.1f} MiB <= {RSS_MAX_MIB:.0f} MiB"))
    return checks


def build_report(
    meta: dict[str, Any], ours: dict[str, Any], ceiling: dict[str, Any], rss: dict[str, Any]
) -> dict[str, Any]:
    ratios = {}
    for name, result in ours.items():
        ceil = ceiling.get(name)
        if ceil and "failed" not in ceil and "failed" not in result and ceil["rps"]:
            ratios[name] = round(result["rps"] / ceil["rps"], 3)
    report: dict[str, Any] = {
        "meta": meta,
        "todo_svc": ours,
        "ceiling": ceiling,
        "ratios": ratios,
        "rss": rss,
    }
    idle, during, login = (ours.get(k) for k in ("storm/list-idle", "storm/list", "storm/login"))
    if idle and during and login and not any("failed" in r for r in (idle, during, login)):
        report["storm"] = {
            "list_connections": idle["connections"],
            "login_connections": login["connections"],
            "list_p99_idle_ms": idle["p99_ms"],
            "list_p99_storm_ms": during["p99_ms"],
            "ratio": round(during["p99_ms"] / idle["p99_ms"], 2) if idle["p99_ms"] else None,
            "login_rps": login["rps"],
        }
    return report


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "todo_svc", "migrations", "pyproject.toml"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{rev}{' (uncommitted changes)' if dirty else ''}"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="warm-up seconds before each scenario (default 2)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of each compared scenario; the best counts (default 2)"
    )
    parser.add_argument(
        "--login-connections", type=int, default=4, help="wrk connections for login and the storm (default 4)"
    )
    parser.add_argument(
        "--scenarios", default=",".join(ORDER), help=f"comma-separated subset of {','.join(ORDER)}"
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling app")
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the bench database (its name is printed)"
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json", help="where to write the JSON")
    parser.add_argument(
        "--bcrypt-rounds", type=int, default=12, help="the server's BCRYPT_ROUNDS (default 12)"
    )
    parser.add_argument(
        "--pool-size", type=int, default=10, help="DATABASE_POOL_SIZE of both apps (default 10)"
    )
    parser.add_argument("--timeout", type=int, default=10, help="wrk request timeout in seconds (default 10)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra server setting (repeatable)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="an admin connection used to create and drop the bench database (env BENCH_POSTGRES_URL)",
    )
    parser.add_argument(
        "--redis",
        action="store_true",
        help="todo-svc keeps its rate-limit counters in Redis (REDIS_URL) instead of in the process",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the Redis of --redis (env BENCH_REDIS_URL)",
    )
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="both apps reach PostgreSQL through PgBouncer in transaction mode (deploy/pgbouncer)",
    )
    parser.add_argument(
        "--replica",
        action="store_true",
        help="todo-svc reads from a streaming replica: both apps run on a primary made for the run "
        "(tests/replication.py), and todo-svc has its replica in DATABASE_REPLICA_URLS",
    )
    parser.add_argument("--server-core", type=int, default=0, help="CPU core of the server (default 0)")
    parser.add_argument("--client-core", type=int, default=1, help="CPU core of wrk (default 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and wrk to cores")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(ORDER))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(ORDER)})")
    args.scenarios = [s for s in ORDER if s in chosen]
    if args.duration < 1 or args.connections < 1 or args.login_connections < 1:
        parser.error("--duration, --connections and --login-connections must be at least 1")
    if args.no_pin or (os.cpu_count() or 1) < 2:
        args.server_core = args.client_core = None
    return args


def bench(run: Run) -> dict[str, Any]:
    args = run.args
    ensure_tools()
    started = time.monotonic()
    if args.replica:
        run.replication = run.resources.enter_context(replication_pair())
        print(f"-- a primary and its streaming replica of our own: {run.replication.folder}", flush=True)
    asyncio.run(create_database(run))
    print(
        f"-- databases {', '.join(run.databases)}: "
        f"migrating and seeding {USERS} users x {TASKS_PER_USER} tasks",
        flush=True,
    )
    migrate(run)
    hashed = asyncio.run(password_hash(args.bcrypt_rounds))
    for database in run.databases:
        asyncio.run(seed(run, hashed, database))
    write_users_file(run)
    if args.pgbouncer:
        pooler = running_pgbouncer(run.admin_url, free_port(), pool_size=args.pool_size)
        run.pooler = run.resources.enter_context(pooler)
        print(f"-- servers reach the databases through PgBouncer (transaction mode), port {run.pooler.port}")
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": git_revision(),
        "database": run.db_name,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "connections": args.connections,
        "login_connections": args.login_connections,
        "server_core": args.server_core,
        "client_core": args.client_core,
        "users": USERS,
        "tasks_per_user": TASKS_PER_USER,
        "bcrypt_rounds": args.bcrypt_rounds,
        "pool_size": args.pool_size,
        "server_env": args.server_env,
        "rate_limit_store": "redis" if args.redis else "memory",
        "database_path": "pgbouncer (transaction mode)" if args.pgbouncer else "direct",
        "reads": "replica (todo-svc), primary (ceiling)" if args.replica else "primary",
        "mixed_blend": BLEND_TEXT,
    }
    print(
        f"-- wrk -t1 on core {args.client_core}, servers on core {args.server_core}, "
        f"{args.connections} connections ({args.login_connections} for login), "
        f"{args.duration} s per scenario, best of {args.rounds} rounds for the compared ones",
        flush=True,
    )

    # Both apps run side by side (the idle one costs nothing) and each compared scenario
    # is measured on one, then at once on the other, round after round: the ratio then
    # compares runs a few seconds apart, not phases minutes apart on a noisy machine.
    ours_server = start_todo_svc(run)
    ceiling_server: Server | None = None
    if not args.no_ceiling and any(s in CEILING_SCENARIOS for s in args.scenarios):
        try:
            ceiling_server = start_ceiling(run)
        except BenchError as exc:  # still report todo-svc's numbers
            print(f"!! {exc}", flush=True)
    ours: dict[str, Any] = {}
    ceiling: dict[str, Any] = {}
    for scenario in args.scenarios:
        compared = scenario in CEILING_SCENARIOS and ceiling_server is not None
        for _ in range(args.rounds if compared else 1):
            best_of(ours, phase(run, ours_server, [scenario]))
            if compared and ceiling_server is not None:
                best_of(ceiling, phase(run, ceiling_server, [scenario]))
    if not args.no_ceiling and ceiling_server is None:
        ceiling = {
            name: {"failed": "the ceiling app did not start"}
            for name in args.scenarios
            if name in CEILING_SCENARIOS
        }
    if run.replication and ours_server.proc.poll() is None:
        meta["database_reads"] = database_reads(ours_server)
    rss: dict[str, Any] = {}
    for key, server in (("todo_svc", ours_server), ("ceiling", ceiling_server)):
        if server is not None and server.proc.poll() is None:
            rss[key] = memory(server)
        if server is not None:
            stop_server(run, server)

    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    report = build_report(meta, ours, ceiling, rss)
    report["targets"] = [{"ok": ok, "check": text} for ok, text in targets(report)]
    return report


def print_report(report: dict[str, Any]) -> None:
    meta = report["meta"]
    print()
    print(
        f"todo-svc bench {meta['date']}  revision {meta['revision']}  {meta['duration_s']} s/scenario  "
        f"bcrypt rounds {meta['bcrypt_rounds']}  pool {meta['pool_size']}  "
        f"rate limits in {meta['rate_limit_store']}  database {meta.get('database_path', 'direct')}  "
        f"reads on {meta.get('reads', 'primary')}  "
        f"run {meta['elapsed_s']} s"
    )
    print(table(report))
    for line in summary_lines(report):
        print(line)
    print("targets (for checking; they do not change the exit status):")
    for item in report["targets"]:
        print(f"  {'PASS' if item['ok'] else 'FAIL'}  {item['check']}")
    problems = []
    for app in ("todo_svc", "ceiling"):
        for name, result in report[app].items():
            if "failed" in result:
                problems.append(f"{app} {name}: {result['failed']}")
            elif result["non2xx"] or result["socket_errors"] or result.get("server_died"):
                problems.append(
                    f"{app} {name}: {result['non2xx']} non-2xx {result['statuses']}, "
                    f"socket errors {result['socket_errors'] or 0}; first: {result['sample']}"
                    + (f"; {result['server_died']}" if result.get("server_died") else "")
                )
    if problems:
        print("PROBLEMS:")
        for problem in problems:
            print(f"  !! {problem}")
    report["problems"] = problems


@contextlib.contextmanager
def cleaned_up(run: Run, failures: tuple[type[BaseException], ...] = (BenchError,)) -> Iterator[None]:
    """Stop the servers and drop the database however the bench inside ends (SIGTERM included);
    a failure or a Ctrl-C is said, and becomes the exit status (1, 130)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield
    except failures as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        cleanup(run)


def cleanup(run: Run) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave a server or database behind
    for proc in list(run.clients):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
    for server in list(run.servers):
        stop_server(run, server)
    if run.replication:  # the databases go with the pair's folder
        run.db_created = False
    run.resources.close()
    if run.db_created and not run.args.keep_db:
        try:
            asyncio.run(drop_database(run))
        except (OSError, asyncpg.PostgresError) as exc:
            print(f"!! could not drop database {run.db_name}: {exc}", file=sys.stderr)
    elif run.db_created:
        print(f"-- kept databases {', '.join(run.databases)} ({run.db_url()})")
    shutil.rmtree(run.workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    run = Run(parse_args(argv))
    with cleaned_up(run):
        report = bench(run)
    print_report(report)
    return written(report, run.args.json)


def written(report: dict[str, Any], path: Path) -> int:
    """Write the report as JSON and say where; the exit status: 1 when it names problems."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"JSON: {path}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
