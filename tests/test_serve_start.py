"""Starting `todo-svc serve` as an operator does: options, a version, and failures in one line."""

from __future__ import annotations

import asyncio
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from conftest import free_port, run_cli
from servers import serving, until_every_worker_answered

CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:1/todo"


def test_version() -> None:
    result = run_cli("--version", database_url=CLOSED_PORT_URL, cwd=Path.cwd())
    assert result.returncode == 0
    assert result.stdout.strip() == f"todo-svc {version('todo-svc')}"


async def test_a_taken_port_fails_at_once_instead_of_sharing_it(database_url: str, tmp_path: Path) -> None:
    """Granian's sockets share a port (SO_REUSEPORT): a second server would take half the requests."""
    async with serving(database_url, tmp_path / "first.log") as first:
        port = first.url.rsplit(":", 1)[1]
        started = time.monotonic()
        second = await asyncio.to_thread(
            run_cli, "serve", "--port", port, database_url=database_url, cwd=tmp_path
        )
        assert time.monotonic() - started < 15
        async with httpx.AsyncClient(base_url=first.url) as client:
            assert (await client.get("/health")).status_code == 200
    assert second.returncode == 1
    assert second.stderr.strip() == f"Error: cannot listen on 127.0.0.1:{port}: address already in use"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (CLOSED_PORT_URL, "Connect call failed"),
        (
            "postgresql://postgres:hunter2@127.0.0.1:5432/todo_svc_missing",
            'database "todo_svc_missing" does not exist',
        ),
        ("sqlite:////nonexistent-folder/todo.db", "unable to open database file"),
    ],
    ids=["unreachable", "missing", "sqlite-folder-missing"],
)
def test_an_unusable_database_fails_in_one_line(url: str, reason: str, tmp_path: Path) -> None:
    result = run_cli("serve", "--port", str(free_port()), database_url=url, cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: cannot reach the database ")
    assert reason in line
    assert "hunter2" not in result.stdout + result.stderr


async def test_options_win_over_the_environment_and_the_first_lines_say_where_it_listens(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    options = ("--host", "127.0.0.1", "--port", str(port), "--workers", "2")
    async with serving(
        database_url, tmp_path / "server.log", *options, port=port, PORT="1", WORKERS="5"
    ) as server:
        ready = await until_every_worker_answered(server, 2, path="/health/ready")
        assert [answer.status_code for answer in ready] == [200] * len(ready)
        lines = server.log_lines()
    api_line, docs_line, config_line, limits_line = lines[:4]
    assert f"API at http://127.0.0.1:{port}/api/v1" in api_line
    assert f"docs at http://127.0.0.1:{port}/docs" in docs_line
    assert "2 worker(s)" in config_line
    assert "drain 0 s on SIGTERM" in config_line
    assert (
        "rate limits: auth 10/minute per client address, login 10/minute per account, "
        "tasks 300/minute per user; counters in each worker's memory"
    ) in limits_line
    assert len(server.worker_pids()) == 2
