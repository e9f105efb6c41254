"""Idempotent creation: the first response to a key is stored and replayed to its retries.

Everything happens in the request's transaction: the created tasks and the
stored response commit together, and a failed request leaves no trace, so
its retry runs afresh.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from todo_svc.db.models import IdempotencyRecord
from todo_svc.db.repositories import IdempotencyRepository
from todo_svc.services.errors import IdempotencyKeyInFlight, IdempotencyKeyReused

KEY_LIFETIME = timedelta(hours=24)


class IdempotencyService:
    def __init__(self, records: IdempotencyRepository) -> None:
        self._records = records

    async def begin(self, owner_id: int, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """The stored response to replay, or `None` when this request is the first with its key."""
        if not await self._records.claim(owner_id, key):
            raise IdempotencyKeyInFlight
        record = await self._records.find_live(owner_id, key, since=datetime.now(UTC) - KEY_LIFETIME)
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused
        return record

    async def remember(self, record: IdempotencyRecord) -> None:
        if not await self._records.save(record):
            raise IdempotencyKeyInFlight
