"""The deployment's topology in child processes: nginx from `deploy/nginx/nginx.conf` in front of
todo-svc instances that can be stopped and started again on the same port; clients, accounts and a
mixed task load for them."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from debian import debian_program
from servers import Server, json_lines, launch, stop_process, wait_until_up

NGINX_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "nginx.conf"
PASSWORD = "correct horse battery"


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def render_config(listen_port: int, upstream_ports: Sequence[int]) -> str:
    """The deployed configuration, its upstream servers' and its own address swapped for local ones
    (in the lines between its BEGIN/END markers only)."""
    config = NGINX_CONFIG.read_text()
    for marker, pattern, addresses in (
        ("upstream servers", r"server \S+:\d+", [f"server 127.0.0.1:{port}" for port in upstream_ports]),
        ("listen", r"listen \S+;", [f"listen 127.0.0.1:{listen_port};"]),
    ):
        block = re.search(rf"# BEGIN {marker}\n(.*?\n)[ \t]*# END {marker}\n", config, re.DOTALL)
        assert block, f"no '# BEGIN {marker}' ... '# END {marker}' lines in {NGINX_CONFIG}"
        lines = [line for line in block[1].splitlines(keepends=True) if line.strip()]
        assert len(lines) == len(addresses), f"{NGINX_CONFIG} has {len(lines)} {marker}, not {len(addresses)}"
        local = "".join(
            re.sub(pattern, address, line) for line, address in zip(lines, addresses, strict=True)
        )
        config = config[: block.start(1)] + local + config[block.end(1) :]
    return config


def config_seconds(directive: str) -> float:
    """A duration set in the deployed configuration, e.g. the upstream's `keepalive_timeout`."""
    match = re.search(rf"^\s*{directive}\s+(\d+)s;", NGINX_CONFIG.read_text(), re.MULTILINE)
    assert match, f"{directive} is not set in seconds in {NGINX_CONFIG}"
    return float(match.group(1))


@dataclass
class Gateway:
    url: str
    process: asyncio.subprocess.Process
    access_log: Path

    def log(self) -> list[dict[str, Any]]:
        return json_lines(self.access_log)

    async def entry(self, request_id: str) -> dict[str, Any]:
        """nginx's access-log line of one request (written once the answer is out)."""
        for _ in range(50):
            if found := [line for line in self.log() if line["request_id"] == request_id]:
                assert len(found) == 1, f"{len(found)} gateway log lines for request {request_id}"
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no gateway log line for request {request_id}")


def _write_config(prefix: Path, listen_port: int, upstream_ports: Sequence[int]) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    config = prefix / "nginx.conf"
    config.write_text(render_config(listen_port, upstream_ports))
    return config


@asynccontextmanager
async def running_gateway(
    prefix: Path, listen_port: int, upstream_ports: Sequence[int]
) -> AsyncIterator[Gateway]:
    """nginx in the foreground, its pid and temporary files under `prefix`, until the block ends."""
    config = _write_config(prefix, listen_port, upstream_ports)
    nginx = debian_program("nginx")
    # As root, nginx's workers would run as `nobody`, which cannot enter the test's folder to write
    # request bodies to temporary files; elsewhere the directive is ignored with a warning.
    directives = "daemon off; user root;" if os.geteuid() == 0 else "daemon off;"
    access_log, error_log = prefix / "access.log", prefix / "error.log"
    with access_log.open("wb") as sink, error_log.open("wb") as errors:
        process = await asyncio.create_subprocess_exec(
            nginx, "-c", str(config), "-p", str(prefix), "-g", directives,
            stdout=sink, stderr=errors, env={"TZ": "UTC", "PATH": os.environ.get("PATH", "")},
        )  # fmt: skip
    try:
        await _wait_until_listening(process, listen_port, error_log)
        yield Gateway(f"http://127.0.0.1:{listen_port}", process, access_log)
    finally:
        await stop_process(process)


async def _wait_until_listening(process: asyncio.subprocess.Process, port: int, error_log: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"nginx exited:\n{_read(error_log)}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nginx did not listen on port {port} within 10 s ({exc!r}):\n{_read(error_log)}"
                ) from exc
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


@dataclass
class Instance:
    """`todo-svc serve` on a fixed port, so that it can leave and rejoin the gateway's upstream."""

    name: str
    port: int
    environment: dict[str, str]
    folder: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> Path:
        return self.folder / f"{self.name}.log"

    async def start(self) -> None:
        environment = {**os.environ, **self.environment, "PORT": str(self.port)}
        # Every run of the instance in one log; in its own folder, so no .env of the checkout is read.
        self.process = await launch(self.output, environment, append=True, cwd=self.folder)
        await wait_until_up(Server(url=self.url, process=self.process, output=self.output))

    async def restart(self, drain_seconds: float) -> tuple[int, str]:
        """SIGTERM, start again on the same port once it exited, and wait until nginx routes to it.

        Returns the exit status and what readiness answered while the instance drained.
        """
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        try:
            async with httpx.AsyncClient(base_url=self.url) as probe:
                ready = await probe.get("/health/ready")
            readiness = f"{ready.status_code} {ready.json().get('checks')}"
        except httpx.TransportError as exc:
            readiness = f"no answer: {exc!r}"
        exit_status = await asyncio.wait_for(self.process.wait(), timeout=drain_seconds + 30)
        await self.start()
        served_before = len(self.served())
        for _ in range(100):  # nginx tries a failed instance again after its fail_timeout (2 s)
            if len(self.served()) > served_before + 10:
                return exit_status, readiness
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} got no requests from the gateway after its restart")

    def served(self) -> list[dict[str, Any]]:
        """The access-log lines of every run so far."""
        return [line for line in json_lines(self.output) if line.get("logger") == "todo_svc.access"]

    def request_ids(self) -> set[str]:
        return {line["request_id"] for line in self.served()}


async def served_by(instances: Sequence[Instance], request_ids: Sequence[str]) -> list[str]:
    """Which instance answered each request, by the request ids in their access logs."""
    for _ in range(50):  # a line is written once its answer is out
        logged = {instance.name: instance.request_ids() for instance in instances}
        where = [next((name for name, ids in logged.items() if rid in ids), "none") for rid in request_ids]
        if "none" not in where:
            break
        await asyncio.sleep(0.02)
    return where


def client(base_url: str, source: str, **options: Any) -> httpx.AsyncClient:
    """A client whose connections come from `source` (any address of 127.0.0.0/8)."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30, **options)


async def raw_get(base_url: str, target: str) -> httpx.Response:
    """A GET of a URL longer than httpx builds (64 KB)."""
    url = httpx.URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {url.host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, content = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name, value) for name, _, value in (line.partition(": ") for line in lines)]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=content)


@dataclass
class Account:
    id: int
    email: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    @property
    def tasks_url(self) -> str:
        return f"/api/v1/users/{self.id}/tasks"


async def register(api: httpx.AsyncClient) -> Account:
    email = f"topology-{uuid.uuid4().hex[:10]}@example.org"
    response = await api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(body["user"]["id"], email, body["access_token"], body["refresh_token"])


def _task_request(
    api: httpx.AsyncClient, kind: str, account: Account, task_ids: list[int], rng: random.Random
) -> Awaitable[httpx.Response]:
    task = f"{account.tasks_url}/{rng.choice(task_ids)}"
    if kind == "create":
        return api.post(account.tasks_url, json={"title": f"load {rng.random()}"})
    if kind == "list":
        return api.get(account.tasks_url, params={"limit": 20})
    if kind == "get":
        return api.get(task)
    return api.patch(f"{task}/complete", json={"completed": rng.random() < 0.5})


async def mixed_load(
    url: str, source: str, account: Account, task_ids: list[int], stop: asyncio.Event, pause: float
) -> Counter[str]:
    """Creates, lists, gets and completes `account`'s tasks until `stop`, up to `pause` seconds apart.

    Counts the answers by kind; anything but a 2xx counts under "failed: …"."""
    rng, counts = random.Random(f"{account.id}-{pause}"), Counter[str]()
    async with client(url, source, headers=account.headers) as api:
        while not stop.is_set():
            await asyncio.sleep(rng.random() * pause)
            kind = rng.choices(("create", "list", "get", "complete"), weights=(2, 2, 3, 2))[0]
            try:
                response = await _task_request(api, kind, account, task_ids, rng)
            except httpx.TransportError as exc:
                counts[f"failed: {kind} {exc!r}"] += 1
                continue
            if not response.is_success:
                counts[f"failed: {kind} {response.status_code} {response.text[:200]}"] += 1
                continue
            counts[kind] += 1
            if kind == "create":
                task_ids.append(response.json()["id"])
    return counts
