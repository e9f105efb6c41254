"""Idempotent creation: the first response to a key is stored and replayed to its retries.

Everything happens in the request's transaction: the created tasks and the
stored response commit together, and a failed request leaves no trace, so
its retry runs afresh.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from todo_svc.db.idempotency import IdempotencyRepository
from todo_svc.db.models import IdempotencyRecord
from todo_svc.services.errors import IdempotencyKeyInFlight, IdempotencyKeyReused

KEY_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What is kept of the first response to a key, to answer its retries with."""

    status_code: int
    body: bytes
    location: str | None


def fingerprint(operation: str, body: bytes) -> str:
    """The request a key was first used with: the operation and its body."""
    return hashlib.sha256(operation.encode() + b"\0" + body).hexdigest()


class IdempotencyService:
    def __init__(self, records: IdempotencyRepository) -> None:
        self._records = records

    async def begin(self, owner_id: int, key: str, request: str) -> StoredResponse | None:
        """The stored response to replay, or `None` when this request (its `fingerprint`) is the
        first with its key; the key is held until the request's transaction ends."""
        if not await self._records.claim(owner_id, key):
            raise IdempotencyKeyInFlight
        record = await self._records.find_live(owner_id, key, since=datetime.now(UTC) - KEY_LIFETIME)
        if record is None:
            return None
        if record.fingerprint != request:
            raise IdempotencyKeyReused
        return StoredResponse(record.status_code, record.body.encode(), record.location)

    async def remember(self, owner_id: int, key: str, request: str, response: StoredResponse) -> None:
        record = IdempotencyRecord(
            user_id=owner_id,
            key=key,
            fingerprint=request,
            status_code=response.status_code,
            body=response.body.decode(),
            location=response.location,
        )
        if not await self._records.save(record):
            raise IdempotencyKeyInFlight
