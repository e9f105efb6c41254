"""The real server in a child process: `todo-svc serve` (Granian, its workers), for tests that need it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from conftest import SECRET, free_port, pooler_of


@dataclass
class Server:
    url: str
    process: asyncio.subprocess.Process
    output: Path

    def log_lines(self) -> list[str]:
        return self.output.read_text(errors="replace").splitlines()


@asynccontextmanager
async def serving(
    database_url: str, output: Path, *options: str, port: int | None = None, **settings: str
) -> AsyncIterator[Server]:
    """`todo-svc serve OPTIONS` on a free port (or `port`) until the block ends (then SIGTERM, and wait
    for its exit)."""
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
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), timeout=60)


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


async def wait_until_up(server: Server, timeout_seconds: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    async with httpx.AsyncClient(base_url=server.url) as client:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                raise RuntimeError("the server exited:\n" + "\n".join(server.log_lines()[-30:]))
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{server.url}/health did not answer 200 within {timeout_seconds} s")
