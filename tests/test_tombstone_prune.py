"""`todo-svc changes prune`: tombstones past the retention go, the others stay and still reach the feed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from helpers import count_rows, create_task
from sqlalchemy import text


async def test_prune_deletes_only_the_tombstones_past_the_retention(client, ann, engine, settings) -> None:
    since = (await client.get(f"{ann.tasks_url}/changes", headers=ann.headers)).json()["next_since"]
    ids = [(await create_task(client, ann, title=f"t{n}"))["id"] for n in range(3)]
    for task_id in ids:
        assert (await client.delete(f"{ann.tasks_url}/{task_id}", headers=ann.headers)).status_code == 204
    async with engine.begin() as connection:  # the first deletion happened long ago
        await connection.execute(
            text("UPDATE task_tombstones SET deleted_at = :long_ago WHERE task_id = :task_id"),
            {"long_ago": datetime(2020, 1, 1, tzinfo=UTC), "task_id": ids[0]},
        )

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "todo_svc.cli", "changes", "prune"],
        env={
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "DATABASE_POOLER": settings.database_pooler,  # behind the test PgBouncer: transaction
            "JWT_SECRET_KEY": settings.jwt_secret_key,
        },
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "deleted 1 tombstones of deleted tasks" in result.stdout
    assert await count_rows(engine, "SELECT count(*) FROM task_tombstones") == 2
    feed: Any = (
        await client.get(f"{ann.tasks_url}/changes", params={"since": since}, headers=ann.headers)
    ).json()
    assert feed["deleted"] == ids[1:]
