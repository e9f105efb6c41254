"""Development data in bulk: numbered accounts with a known password, each with its tasks.

Accounts are `<prefix>-<n>@example.org`. Seeding again creates only the accounts
that are missing (and their tasks), so a second run of the same command adds
nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from todo_svc.db.models import Task, User

CHUNK = 1000  # rows per statement: under SQLite's parameter limit, big enough to be fast


@dataclass(frozen=True)
class SeedResult:
    users_created: int
    users_existing: int
    tasks_created: int


def seed_email(prefix: str, number: int) -> str:
    return f"{prefix}-{number}@example.org"


def _chunks(rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


async def seed(
    engine: AsyncEngine, *, users: int, tasks_per_user: int, password_hash: str, prefix: str = "seed"
) -> SeedResult:
    """Create the missing accounts of `<prefix>-1 … <prefix>-<users>` and their tasks, in one transaction."""
    emails = [seed_email(prefix, number) for number in range(1, users + 1)]
    async with engine.begin() as connection:
        existing = await _existing(connection, emails)
        now = datetime.now(UTC)
        new_users = [
            {"email": email, "password_hash": password_hash, "created_at": now, "updated_at": now}
            for email in emails
            if email not in existing
        ]
        user_ids: list[int] = []
        for chunk in _chunks(new_users):
            result = await connection.execute(insert(User).returning(User.id), chunk)
            user_ids.extend(result.scalars())
        tasks = [
            _task(user_id, number, now - timedelta(minutes=tasks_per_user - number))
            for user_id in user_ids
            for number in range(1, tasks_per_user + 1)
        ]
        for chunk in _chunks(tasks):
            await connection.execute(insert(Task), chunk)
    return SeedResult(users_created=len(user_ids), users_existing=len(existing), tasks_created=len(tasks))


async def _existing(connection: AsyncConnection, emails: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(emails):
        found.update((await connection.execute(select(User.email).where(User.email.in_(chunk)))).scalars())
    return found


def _task(user_id: int, number: int, created_at: datetime) -> dict[str, Any]:
    """Varied enough to try the list's filters and sorts: every third done, some with a description."""
    return {
        "user_id": user_id,
        "title": f"Task {number}",
        "description": f"Seeded task {number}" if number % 2 else None,
        "completed": number % 3 == 0,
        "version": 1,
        "created_at": created_at,
        "updated_at": created_at,
    }
