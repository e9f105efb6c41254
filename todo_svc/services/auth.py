"""Accounts: registration, password login, the account itself."""

from __future__ import annotations

from todo_svc.core.security import PasswordHasher
from todo_svc.db.models import User
from todo_svc.db.repositories import UserRepository
from todo_svc.services.errors import AccountGone, EmailTaken, InvalidCredentials


def normalize_email(email: str) -> str:
    return email.strip().lower()


class AuthService:
    def __init__(self, users: UserRepository, hasher: PasswordHasher) -> None:
        self._users = users
        self._hasher = hasher

    async def register(self, email: str, password: str) -> User:
        email = normalize_email(email)
        if await self._users.get_by_email(email) is not None:
            raise EmailTaken
        user = await self._users.create(email, await self._hasher.hash(password))
        if user is None:  # lost a race with a simultaneous registration
            raise EmailTaken
        return user

    async def authenticate(self, email: str, password: str) -> User:
        """The user with these credentials; unknown email and wrong password fail alike."""
        user = await self._users.get_by_email(normalize_email(email))
        verified = await self._hasher.verify(password, user.password_hash if user else None)
        if user is None or not verified:
            raise InvalidCredentials
        return user

    async def get_account(self, user_id: int) -> User:
        user = await self._users.get_by_id(user_id)
        if user is None:
            raise AccountGone
        return user

    async def delete_account(self, user_id: int) -> None:
        """Delete the user; their tasks go with them (ON DELETE CASCADE)."""
        if not await self._users.delete_by_id(user_id):
            raise AccountGone
