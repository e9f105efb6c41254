"""Refresh-token families: each refresh rotates; a used token that comes back revokes its family."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from todo_svc.db.refresh_tokens import RefreshTokenRepository
from todo_svc.services.errors import RefreshTokenInvalid


def new_refresh_token() -> tuple[str, str]:
    """A fresh opaque refresh token and the digest that is all the database keeps of it."""
    token = secrets.token_urlsafe(32)
    return token, refresh_token_digest(token)


def refresh_token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    """A refresh-token family and its newest token. Access tokens name the family (`sid`), so a
    client can end its session with the access token alone."""

    id: str
    refresh_token: str


class SessionService:
    def __init__(self, tokens: RefreshTokenRepository, lifetime: timedelta) -> None:
        self._tokens = tokens
        self._lifetime = lifetime

    async def start(self, user_id: int, family: str | None = None) -> Session:
        """A refresh token opening a new family (or continuing `family`)."""
        token, digest = new_refresh_token()
        family = family or uuid.uuid4().hex
        await self._tokens.store(user_id, family, digest, datetime.now(UTC) + self._lifetime)
        return Session(id=family, refresh_token=token)

    async def rotate(self, token: str) -> tuple[int, Session]:
        """Spend `token` for its owner's id and the next token of its family.

        A token that was used or revoked before is a stolen copy or a replay: its
        whole family is revoked, and that revocation is committed although the
        request then fails.
        """
        now, digest = datetime.now(UTC), refresh_token_digest(token)
        spent = await self._tokens.use(digest, now)
        if spent is None:
            if (family := await self._tokens.family_of(digest)) is not None:
                await self._tokens.revoke_family(family, now)
                await self._tokens.commit_now()
            raise RefreshTokenInvalid
        user_id, family = spent
        return user_id, await self.start(user_id, family)

    async def end(self, user_id: int, token: str) -> None:
        """Log out: revoke the family of the caller's token (unknown tokens change nothing)."""
        family = await self._tokens.family_of(refresh_token_digest(token), user_id=user_id)
        if family is not None:
            await self.end_session(user_id, family)

    async def end_session(self, user_id: int, session_id: str) -> None:
        """Log out by the session an access token names (only the caller's own)."""
        await self._tokens.revoke_family(session_id, datetime.now(UTC), user_id=user_id)
