"""Refresh tokens by digest. Using one is a single conditional UPDATE: of two
simultaneous uses, exactly one finds the token unused."""

from __future__ import annotations

from datetime import UTC, datetime

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import delete, select, update

from todo_svc.db.models import RefreshToken


class RefreshTokenRepository(SQLAlchemyAsyncRepository[RefreshToken]):
    model_type = RefreshToken

    async def store(self, user_id: int, family: str, digest: str, expires_at: datetime) -> None:
        now = datetime.now(UTC)
        self.session.add(
            RefreshToken(
                user_id=user_id,
                family=family,
                token_hash=digest,
                expires_at=expires_at,
                created_at=now,
                updated_at=now,
            )
        )
        await self.session.flush()

    async def use(self, digest: str, now: datetime) -> tuple[int, str] | None:
        """Mark a live, unused token used; its owner and family, or `None` when it is not live."""
        statement = (
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == digest,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(used_at=now, updated_at=now)
            .returning(RefreshToken.user_id, RefreshToken.family)
        )
        row = (await self.session.execute(statement)).first()
        return (row[0], row[1]) if row is not None else None

    async def family_of(self, digest: str, user_id: int | None = None) -> str | None:
        statement = select(RefreshToken.family).where(RefreshToken.token_hash == digest)
        if user_id is not None:
            statement = statement.where(RefreshToken.user_id == user_id)
        family: str | None = await self.session.scalar(statement)
        return family

    async def revoke_family(self, family: str, now: datetime, user_id: int | None = None) -> None:
        statement = update(RefreshToken).where(
            RefreshToken.family == family, RefreshToken.revoked_at.is_(None)
        )
        if user_id is not None:
            statement = statement.where(RefreshToken.user_id == user_id)
        await self.session.execute(statement.values(revoked_at=now, updated_at=now))

    async def commit_now(self) -> None:
        """Commit at once: for the one write that must survive the 401 it leads to (revoking a
        family whose used token came back)."""
        await self.session.commit()

    async def delete_expired(self, before: datetime) -> int:
        result = await self.session.execute(
            delete(RefreshToken).where(RefreshToken.expires_at < before).returning(RefreshToken.id)
        )
        return len(result.all())
