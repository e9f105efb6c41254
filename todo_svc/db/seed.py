"""Development data in bulk: numbered accounts with a known password, each with its tasks.

Accounts are `<prefix>-<n>@example.org`. Seeding again creates only the accounts
that are missing (and their tasks), so a second run of the same command adds
nothing. The tasks are written by the same statement as the API's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from todo_svc.db.database import RequestDatabase
from todo_svc.db.models import User
from todo_svc.db.tasks import insert_tasks
from todo_svc.db.users import UserRepository


@dataclass(frozen=True)
class SeedResult:
    users_created: int
    users_existing: int
    tasks_created: int


def seed_email(prefix: str, number: int) -> str:
    return f"{prefix}-{number}@example.org"


async def seed(
    engine: AsyncEngine, *, users: int, tasks_per_user: int, password_hash: str, prefix: str = "seed"
) -> SeedResult:
    """Create the missing accounts of `<prefix>-1 … <prefix>-<users>` and their tasks, in one transaction."""
    emails = [seed_email(prefix, number) for number in range(1, users + 1)]
    database = RequestDatabase(engine, async_sessionmaker(engine, expire_on_commit=False))
    try:
        await database.all_or_nothing()
        accounts = UserRepository(session=database.session)
        existing = {user.email for user in await accounts.list(User.email.in_(emails))}
        created = await accounts.add_many(
            [User(email=email, password_hash=password_hash) for email in emails if email not in existing]
        )
        now = datetime.now(UTC)
        tasks = [
            _task(user.id, number, now - timedelta(minutes=tasks_per_user - number))
            for user in created
            for number in range(1, tasks_per_user + 1)
        ]
        async with database.statements() as run:
            await insert_tasks(run, tasks)
        await database.commit()
    finally:
        await database.close()
    return SeedResult(users_created=len(created), users_existing=len(existing), tasks_created=len(tasks))


def _task(owner_id: int, number: int, created_at: datetime) -> dict[str, Any]:
    """Varied enough to try the list's filters and sorts: every third done, some with a description."""
    return {
        "owner_id": owner_id,
        "now": created_at,
        "title": f"Task {number}",
        "description": f"Seeded task {number}" if number % 2 else None,
        "completed": number % 3 == 0,
    }
