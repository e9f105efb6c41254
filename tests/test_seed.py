"""`todo-svc seed`: the asked numbers of accounts and tasks, usable through the API, never twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import run_cli
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

Client = AsyncTestClient[Litestar]


async def counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as connection:
        users = await connection.scalar(text("SELECT count(*) FROM users"))
        tasks = await connection.scalar(text("SELECT count(*) FROM tasks"))
    return int(users or 0), int(tasks or 0)


@pytest.mark.backends("postgresql", "sqlite")
async def test_seed_creates_the_asked_accounts_and_tasks(
    client: Client, engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    seeded = await asyncio.to_thread(
        run_cli,
        "seed",
        "--users",
        "25",
        "--tasks",
        "12",
        database_url=database_url,
        cwd=tmp_path,
        BCRYPT_ROUNDS="4",
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "created 25 accounts" in seeded.stdout
    assert await counts(engine) == (25, 25 * 12)

    # Every account logs in with the seed password and sees exactly its own tasks.
    login = await client.post(
        "/api/v1/auth/login", json={"email": "seed-25@example.org", "password": "seed-password"}
    )
    assert login.status_code == 200, login.text
    body = login.json()
    page = await client.get(
        f"/api/v1/users/{body['user']['id']}/tasks?limit=100",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert page.json()["total"] == 12
    assert sum(task["completed"] for task in page.json()["items"]) == 4  # every third


@pytest.mark.backends("postgresql", "sqlite")
async def test_seeding_again_adds_only_what_is_missing(
    client: Client, engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    for users in ("3", "3", "5"):
        result = await asyncio.to_thread(
            run_cli,
            "seed",
            "--users",
            users,
            "--tasks",
            "2",
            database_url=database_url,
            cwd=tmp_path,
            BCRYPT_ROUNDS="4",
        )
        assert result.returncode == 0, result.stderr
    assert "created 2 accounts (3 already there)" in result.stdout
    assert await counts(engine) == (5, 10)


async def test_seed_refuses_a_production_database(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    refused = await asyncio.to_thread(
        run_cli, "seed", "--users", "1", database_url=database_url, cwd=tmp_path, ENVIRONMENT="production"
    )
    assert refused.returncode != 0
    assert "production" in refused.stderr
    assert await counts(engine) == (0, 0)


@pytest.mark.parametrize("arguments", [["--users", "0"], ["--tasks", "-1"], ["--users", "many"]])
async def test_seed_refuses_nonsense_counts(database_url: str, tmp_path: Path, arguments: list[str]) -> None:
    refused = await asyncio.to_thread(run_cli, "seed", *arguments, database_url=database_url, cwd=tmp_path)
    assert refused.returncode == 2
    assert "Invalid value" in refused.stderr
