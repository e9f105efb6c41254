"""Accounts and sign-in: registration, password login, refresh, the account itself.

Register, login and refresh end the same way, in a signed-in session: a refresh-token family
(`SessionService`) and an access token naming it, signed by whatever `TokenSigner` the caller
passes in (the api layer's JWT settings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from todo_svc.core import metrics
from todo_svc.core.passwords import PasswordHasher
from todo_svc.db.models import User
from todo_svc.db.users import UserRepository
from todo_svc.services.errors import AccountGone, EmailTaken, InvalidCredentials
from todo_svc.services.sessions import Session, SessionService

__all__ = ("AuthService", "SignedIn", "TokenSigner", "User", "normalize_email")


def normalize_email(email: str) -> str:
    return email.strip().lower()


class TokenSigner(Protocol):
    """Signs the access token of a session."""

    @property
    def lifetime_seconds(self) -> int: ...

    def sign(self, user_id: int, email: str, session_id: str) -> str: ...


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A user with a new session: what register, login and refresh answer."""

    user: User
    access_token: str
    expires_in: int
    refresh_token: str


class AuthService:
    """`signed_in` hears of the user each sign-in is for: the request's unit of work, so that the
    user's next reads see what the sign-in wrote (`RequestDatabase.writes_for`)."""

    def __init__(
        self,
        users: UserRepository,
        hasher: PasswordHasher,
        sessions: SessionService,
        signer: TokenSigner,
        signed_in: Callable[[int], None] = lambda _: None,
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._sessions = sessions
        self._signer = signer
        self._signed_in = signed_in

    async def register(self, email: str, password: str) -> SignedIn:
        email = normalize_email(email)
        if await self._users.get_by_email(email) is not None:
            raise EmailTaken
        user = await self._users.create(email, await self._hasher.hash(password))
        if user is None:  # lost a race with a simultaneous registration
            raise EmailTaken
        return await self._sign_in(user)

    async def login(self, email: str, password: str) -> SignedIn:
        """Unknown email and wrong password fail alike (and take the same time)."""
        user = await self._users.get_by_email(normalize_email(email))
        verified = await self._hasher.verify(password, user.password_hash if user else None)
        if user is None or not verified:
            metrics.LOGINS.labels("failure").inc()
            raise InvalidCredentials
        metrics.LOGINS.labels("success").inc()
        return await self._sign_in(user)

    async def refresh(self, refresh_token: str) -> SignedIn:
        """The next token of the refresh token's family; a token used twice revokes the family."""
        user_id, session = await self._sessions.rotate(refresh_token)
        return self._signed(await self.get_account(user_id), session)

    async def get_account(self, user_id: int) -> User:
        user = await self._users.get_by_id(user_id)
        if user is None:
            raise AccountGone
        return user

    async def delete_account(self, user_id: int) -> None:
        """Delete the user; their tasks go with them (ON DELETE CASCADE)."""
        if not await self._users.delete_by_id(user_id):
            raise AccountGone

    async def _sign_in(self, user: User) -> SignedIn:
        return self._signed(user, await self._sessions.start(user.id))

    def _signed(self, user: User, session: Session) -> SignedIn:
        self._signed_in(user.id)
        return SignedIn(
            user=user,
            access_token=self._signer.sign(user.id, user.email, session.id),
            expires_in=self._signer.lifetime_seconds,
            refresh_token=session.refresh_token,
        )
