"""Stored responses of creates sent with an Idempotency-Key, in the request's session (and so in
the transaction of the tasks they created)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from todo_svc.db.models import IdempotencyRecord


class IdempotencyRepository(SQLAlchemyAsyncRepository[IdempotencyRecord]):
    model_type = IdempotencyRecord

    async def claim(self, owner_id: int, key: str) -> bool:
        """Hold the key for this transaction; `False` when a twin request holds it now.

        On PostgreSQL an advisory transaction lock, released by COMMIT or ROLLBACK
        (also of a crashed request); SQLite runs one writer at a time and relies on
        the unique constraint alone.
        """
        if self._dialect.name != "postgresql":
            return True
        lock = func.pg_try_advisory_xact_lock(self.lock_id(owner_id, key))
        return bool(await self.session.scalar(select(lock)))

    @staticmethod
    def lock_id(owner_id: int, key: str) -> int:
        """The key's advisory-lock number: a 64-bit hash of owner and key."""
        digest = hashlib.blake2b(f"{owner_id}:{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    async def find_live(self, owner_id: int, key: str, since: datetime) -> IdempotencyRecord | None:
        """The record of this key if it was made after `since`; an older one is deleted."""
        record = await self.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.user_id == owner_id, IdempotencyRecord.key == key
            )
        )
        if record is not None and record.created_at < since:
            await self.session.delete(record)
            await self.session.flush()
            return None
        return record

    async def save(self, record: IdempotencyRecord) -> bool:
        """Store the record; `False` when a twin stored one for the same key first."""
        self.session.add(record)
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError:
            return False
        return True
