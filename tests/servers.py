"""The real server in a child process: `todo-svc serve` (Granian, its workers), for tests that need it,
and which of its worker processes answered a request."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from conftest import SECRET, free_port, pooler_of

# A request id the service made up (todo_svc/core/request_id.py): a random prefix per process, then a
# counter. Two prefixes among the answers are two worker processes.
GENERATED_REQUEST_ID = re.compile(r"(?P<process>[0-9a-f]{16})[0-9a-f]{8,}")
SPAWNED_WORKER = re.compile(r"Spawning worker-\d+ with PID: (\d+)")  # Granian's line per worker


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a log (a line still being written is left out)."""
    found = []
    for line in (path.read_text(errors="replace") if path.exists() else "").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


@dataclass
class Server:
    url: str
    process: asyncio.subprocess.Process
    output: Path

    def log_lines(self) -> list[str]:
        return self.output.read_text(errors="replace").splitlines() if self.output.exists() else []

    def json_lines(self) -> list[dict[str, Any]]:
        return json_lines(self.output)

    def tail(self, count: int = 30) -> str:
        """The last lines of its output, to quote when it fails."""
        return "\n".join(self.log_lines()[-count:]) or "(no output)"

    def worker_pids(self) -> set[str]:
        """The pids of the worker processes Granian said it spawned."""
        return {match[1] for line in self.log_lines() if (match := SPAWNED_WORKER.search(line))}


@asynccontextmanager
async def serving(
    database_url: str, output: Path, *options: str, port: int | None = None, **settings: str
) -> AsyncIterator[Server]:
    """`todo-svc serve OPTIONS` on a free port (or `port`) until the block ends (then SIGTERM, and wait
    for its exit; SIGKILL if it does not come)."""
    port = port or free_port()
    environment = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "DATABASE_POOLER": pooler_of(database_url),
        "JWT_SECRET_KEY": SECRET,
        "BCRYPT_ROUNDS": "4",
        "PORT": str(port),
        **settings,
    }
    process = await launch(output, environment, *options)
    server = Server(url=f"http://127.0.0.1:{port}", process=process, output=output)
    try:
        await wait_until_up(server)
        yield server
    finally:
        await stop_process(process)


async def launch(
    output: Path, environment: dict[str, str], *options: str, append: bool = False, cwd: Path | None = None
) -> asyncio.subprocess.Process:
    """`todo-svc serve OPTIONS` in a child process, its output (both streams) in `output`."""
    with output.open("ab" if append else "wb") as sink:
        return await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "todo-svc"),
            "serve",
            *options,
            env=environment,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def exit_status(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


async def wait_until_up(server: Server, timeout_seconds: float = 60.0) -> None:
    """Until `/health` answers 200. Within `timeout_seconds` whatever the server does (exits, never
    listens, accepts and never answers, answers something else), else an error that says what it
    did last and quotes its output."""
    deadline = time.monotonic() + timeout_seconds
    last = "nothing yet"
    async with httpx.AsyncClient(base_url=server.url) as client:
        while (remaining := deadline - time.monotonic()) > 0:
            if server.process.returncode is not None:
                raise RuntimeError(
                    f"the server exited ({exit_status(server.process.returncode)}) before {server.url}/health"
                    f" answered 200; its output:\n{server.tail()}"
                )
            try:
                response = await client.get("/health", timeout=min(remaining, 5.0))
            except httpx.TransportError as exc:
                last = f"no answer ({exc!r})"
            else:
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]!r}"
            await asyncio.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
    raise TimeoutError(
        f"{server.url}/health did not answer 200 within {timeout_seconds:g} s (last: {last});"
        f" the server's output:\n{server.tail()}"
    )


async def stop_process(process: asyncio.subprocess.Process, grace_seconds: float = 60) -> int:
    """SIGTERM, and SIGKILL if it has not exited in time."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=grace_seconds)
        except TimeoutError:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode


# --- which worker answered -------------------------------------------------------------------------


def worker_of(response: httpx.Response) -> str:
    """The worker process that answered a request sent without an X-Request-ID: the per-process prefix
    of the request id it made up."""
    request_id = response.headers["x-request-id"]
    match = GENERATED_REQUEST_ID.fullmatch(request_id)
    assert match, f"{request_id!r} is not a request id the service made up (a process prefix, a counter)"
    return match["process"]


async def until_every_worker_answered(
    server: Server,
    workers: int,
    method: str = "GET",
    path: str = "/health",
    *,
    at_least: int = 1,
    at_most: int = 40,
    **request: Any,
) -> list[httpx.Response]:
    """The same request, each on a connection of its own, until `workers` worker processes have answered
    (and at least `at_least` were sent). New connections land on the workers' sockets as the kernel
    hashes them (SO_REUSEPORT): `at_most` = 40 all on one of two workers is a 2**-39 chance."""
    answers: list[httpx.Response] = []
    seen: set[str] = set()
    while len(answers) < at_most:
        async with httpx.AsyncClient(base_url=server.url) as client:
            answers.append(await client.request(method, path, **request))
        seen.add(worker_of(answers[-1]))
        assert len(seen) <= workers, f"answers from {len(seen)} processes, from {workers} workers"
        if len(seen) == workers and len(answers) >= at_least:
            return answers
    raise AssertionError(f"{at_most} requests on new connections reached {len(seen)} of {workers} workers")


async def clients_on_every_worker(
    stack: AsyncExitStack, server: Server, workers: int, each: int, at_most: int = 100, **options: Any
) -> list[httpx.AsyncClient]:
    """`each` clients kept alive on a connection to every one of `workers` workers (a first GET /health
    on each tells which worker its connection reached); closed when `stack` is."""
    kept: dict[str, list[httpx.AsyncClient]] = {}
    for _ in range(at_most):
        client = httpx.AsyncClient(base_url=server.url, **options)
        worker = worker_of(await client.get("/health"))
        if len(kept.setdefault(worker, [])) < each:
            kept[worker].append(client)
            stack.push_async_callback(client.aclose)
        else:
            await client.aclose()
        if len(kept) == workers and all(len(clients) == each for clients in kept.values()):
            return [client for clients in kept.values() for client in clients]
        assert len(kept) <= workers, f"answers from {len(kept)} processes, from {workers} workers"
    raise AssertionError(f"{at_most} connections did not give {each} to each of {workers} workers: {kept}")
