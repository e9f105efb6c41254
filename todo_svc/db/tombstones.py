"""The deleted tasks the changes feed remembers, and their housekeeping."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from todo_svc.db.models import TaskTombstone

# A reader that caught up at T may be told of deletions whose transaction was still open at T:
# those are kept this much longer than the retention, so that no valid `since` misses one.
IN_FLIGHT_MARGIN = timedelta(hours=1)


async def prune_tombstones(session: AsyncSession, now: datetime, retention: timedelta) -> int:
    """Delete the tombstones no valid `since` token can still ask for; how many went."""
    cutoff = now - retention - IN_FLIGHT_MARGIN
    result = await session.execute(
        delete(TaskTombstone).where(TaskTombstone.deleted_at < cutoff).returning(TaskTombstone.id)
    )
    return len(result.all())
