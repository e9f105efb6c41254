"""Accounts, through advanced-alchemy's own methods (they translate the driver's errors); the
account read of `GET /users/me` is one statement, so that a replica may answer it."""

from __future__ import annotations

from typing import Any, cast

from advanced_alchemy.exceptions import IntegrityError as RepositoryIntegrityError
from advanced_alchemy.exceptions import NotFoundError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from todo_svc.db.database import CompiledStatement, RequestDatabase
from todo_svc.db.models import MAX_ID, User

__all__ = ("User", "UserRepository")

users = cast("Table", User.__table__)
_ACCOUNT = CompiledStatement(select(users).where(users.c.id == bindparam("user_id")))


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User

    def __init__(
        self, *, session: AsyncSession, database: RequestDatabase | None = None, **kwargs: Any
    ) -> None:
        super().__init__(session=session, **kwargs)
        self._database = database or RequestDatabase.around(session)

    async def get_by_email(self, email: str) -> User | None:
        return await self.get_one_or_none(func.lower(User.email) == email.lower())

    async def get_by_id(self, user_id: int) -> User | None:
        if user_id > MAX_ID:
            return None
        async with self._database.statements() as statements:
            row = await statements.fetch_one(_ACCOUNT, user_id=user_id)
        return User(**row) if row is not None else None

    async def create(self, email: str, password_hash: str) -> User | None:
        """Insert a user; `None` when the email is already taken."""
        try:
            return await self.add(User(email=email, password_hash=password_hash), auto_refresh=False)
        except RepositoryIntegrityError:  # the unique index on lower(email)
            return None

    async def delete_by_id(self, user_id: int) -> bool:
        """Delete the account; its tasks, sessions and idempotency records go with it (ON DELETE CASCADE)."""
        try:
            await self.delete(user_id)
        except NotFoundError:
            return False
        return True
