"""A COMMIT that fails never answers 2xx: the request owns its transaction, so a write refused at
COMMIT is a 500 that stores nothing and leaks nothing, and the pool serves the next request.

A deferred constraint trigger (PostgreSQL) lets the INSERT succeed and fails its COMMIT."""

from __future__ import annotations

from typing import Any

from helpers import assert_error
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

Client = AsyncTestClient[Litestar]

REFUSED_TITLE = "refuse-at-commit-7f3a"
REFUSED_EMAIL = "refuse-at-commit-7f3a@example.org"


async def install_commit_trap(engine: AsyncEngine, table: str, column: str, magic: str) -> None:
    """A deferred constraint trigger: the INSERT succeeds, its COMMIT fails."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                f"""
                CREATE OR REPLACE FUNCTION test_refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.{column} = '{magic}' THEN
                        RAISE EXCEPTION 'refused at commit: SELECT secret FROM vault';
                    END IF;
                    RETURN NULL;
                END $$
                """  # noqa: S608 - constants of this module
            )
        )
        await connection.execute(
            text(
                f"CREATE CONSTRAINT TRIGGER test_refuse_{table} AFTER INSERT ON {table} "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_{table}()"
            )
        )


async def remove_commit_trap(engine: AsyncEngine, table: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(f"DROP TRIGGER IF EXISTS test_refuse_{table} ON {table}"))
        await connection.execute(text(f"DROP FUNCTION IF EXISTS test_refuse_{table}()"))


async def test_task_create_whose_commit_fails_is_not_2xx(
    client: Client, ann: Any, engine: AsyncEngine
) -> None:
    assert engine.dialect.name == "postgresql"
    await install_commit_trap(engine, "tasks", "title", REFUSED_TITLE)
    try:
        response = await client.post(ann.tasks_url, json={"title": REFUSED_TITLE}, headers=ann.headers)
    finally:
        await remove_commit_trap(engine, "tasks")

    assert not response.is_success, response.text
    assert_error(response, 500)
    assert "refused" not in response.text
    assert "vault" not in response.text
    listed = await client.get(ann.tasks_url, headers=ann.headers)
    assert listed.status_code == 200
    assert listed.json()["total"] == 0
    # the pool is healthy afterwards: the next write is stored
    assert (await client.post(ann.tasks_url, json={"title": "fine"}, headers=ann.headers)).status_code == 201


async def test_register_whose_commit_fails_is_not_2xx(client: Client, engine: AsyncEngine) -> None:
    assert engine.dialect.name == "postgresql"
    credentials = {"email": REFUSED_EMAIL, "password": "long enough pw"}
    await install_commit_trap(engine, "users", "email", REFUSED_EMAIL)
    try:
        response = await client.post("/api/v1/auth/register", json=credentials)
    finally:
        await remove_commit_trap(engine, "users")

    assert not response.is_success, response.text
    assert_error(response, 500)
    assert "access_token" not in response.text
    assert "vault" not in response.text
    assert_error(await client.post("/api/v1/auth/login", json=credentials), 401)
