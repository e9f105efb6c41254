"""Accounts, through advanced-alchemy's own methods (they translate the driver's errors)."""

from __future__ import annotations

from advanced_alchemy.exceptions import IntegrityError as RepositoryIntegrityError
from advanced_alchemy.exceptions import NotFoundError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func

from todo_svc.db.models import MAX_ID, User

__all__ = ("User", "UserRepository")


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User

    async def get_by_email(self, email: str) -> User | None:
        return await self.get_one_or_none(func.lower(User.email) == email.lower())

    async def get_by_id(self, user_id: int) -> User | None:
        return await self.get_one_or_none(User.id == user_id) if user_id <= MAX_ID else None

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
