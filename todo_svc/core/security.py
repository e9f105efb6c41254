"""Password hashing and the access-token format."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import bcrypt
import jwt
from litestar.exceptions import NotAuthorizedException
from litestar.security.jwt import Token


def _prehash(password: str) -> bytes:
    """SHA-256 first, so that bcrypt's 72-byte limit never truncates a password.

    Two passwords that differ only after their 72nd byte stay different; the
    base64 digest is 44 ASCII bytes without NUL, which bcrypt accepts.
    """
    return base64.b64encode(hashlib.sha256(password.encode()).digest())


# Linux nice value of the hashing threads: a thread at 5 weighs a third of one at 0.
HASHING_NICENESS = 5


def _yield_to_requests() -> None:
    """Run this hashing thread below the event loop's CPU priority.

    bcrypt releases the GIL, so its threads compete with the event loop for the
    core, not for the interpreter: at equal priority two of them take two thirds
    of a saturated core from every other request. At nice 5 they still get
    enough to keep logins moving (at nice 19 they starve into timeouts). On
    Linux a thread's nice value is its own; elsewhere this is a no-op.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


def _frozen(value: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
    return value if value is None or isinstance(value, str) else tuple(value)


class PasswordHasher:
    """bcrypt off the event loop, in a bounded pool.

    bcrypt releases the GIL, so a small pool uses every core; the semaphore keeps
    a login flood from queueing unbounded work behind it.
    """

    def __init__(self, rounds: int, workers: int) -> None:
        self._rounds = rounds
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="bcrypt", initializer=_yield_to_requests
        )
        self._slots = asyncio.Semaphore(workers * 8)
        self._dummy_hash: bytes | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def hash(self, password: str) -> str:
        hashed: bytes = await self._run(
            lambda: bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=self._rounds))
        )
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check a password; with no hash (unknown account) spend the same time and fail."""
        if password_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = (await self.hash("dummy password for unknown accounts")).encode()
            await self._run(bcrypt.checkpw, _prehash(password), self._dummy_hash)
            return False
        matches: bool = await self._run(bcrypt.checkpw, _prehash(password), password_hash.encode())
        return matches

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class ExpiredToken(NotAuthorizedException):
    """A genuine access token past its `exp`: the client can refresh instead of logging in again."""

    def __init__(self) -> None:
        super().__init__("The access token expired")


@dataclass
class AccessToken(Token):
    """An access token whose claims sit at the top level, as the contract says.

    Litestar's `Token` nests unknown claims under `extras` and allows no clock
    skew on `iat`; this class writes `email` as a claim of its own and accepts
    a small leeway on `iat` and `exp`.
    """

    email: str = ""
    sid: str | None = None  # the refresh-token family (session) the token was issued for
    leeway_seconds: ClassVar[int] = 10
    required_claims: ClassVar[tuple[str, ...]] = ("sub", "exp", "iat", "jti")

    def __post_init__(self) -> None:
        # Whole seconds in UTC, as the claims carry them; validity (exp, iat) is
        # checked by PyJWT, with leeway, while decoding.
        if self.exp.tzinfo is not UTC or self.exp.microsecond:
            self.exp = self.exp.astimezone(UTC).replace(microsecond=0)
        if self.iat.tzinfo is not UTC or self.iat.microsecond:
            self.iat = self.iat.astimezone(UTC).replace(microsecond=0)

    def encode(self, secret: str, algorithm: str) -> str:
        claims = {k: v for k, v in asdict(self).items() if v is not None and k != "extras"}
        return jwt.encode({**claims, **self.extras}, key=secret, algorithm=algorithm)

    @classmethod
    def decode(  # type: ignore[override]
        cls,
        encoded_token: str,
        secret: str,
        algorithm: str,
        audience: str | Sequence[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        **_: Any,
    ) -> Self:
        """The verified token, its expiry checked on every request.

        A client sends the same token with many requests, so verified tokens are
        remembered (a bounded cache keyed by the token's exact text, the key and
        the checks): signature and claims are verified once per token, `exp`
        every time.
        """
        token = cls._verify(encoded_token, secret, algorithm, _frozen(audience), _frozen(issuer))
        if token.exp.timestamp() <= time.time() - cls.leeway_seconds:
            raise ExpiredToken
        return token

    @classmethod
    @functools.lru_cache(maxsize=4096)
    def _verify(
        cls,
        encoded_token: str,
        secret: str,
        algorithm: str,
        audience: str | tuple[str, ...] | None,
        issuer: str | tuple[str, ...] | None,
    ) -> Self:
        """Verify with PyJWT and build the token straight from the verified claims.

        Only `algorithm` (HS256) is accepted; `exp`, `iat`, `sub` and `jti` are
        required; `iat` and `exp` get the leeway; `sub` must be a user id. Litestar's
        generic decode would convert the payload once more through msgspec.
        Failures raise, so they are never cached.
        """
        try:
            claims = jwt.decode(
                encoded_token,
                key=secret,
                algorithms=[algorithm],
                audience=audience,
                issuer=issuer,
                options={
                    "require": list(cls.required_claims),
                    "verify_aud": bool(audience),
                    "verify_iss": bool(issuer),
                },
                leeway=cls.leeway_seconds,
            )
        except jwt.ExpiredSignatureError:
            raise ExpiredToken from None  # signed by us and well formed: the client should refresh
        except jwt.InvalidTokenError as error:
            raise NotAuthorizedException("Invalid token") from error
        sub, email, sid = claims["sub"], claims.get("email", ""), claims.get("sid")
        if not (isinstance(sub, str) and sub.isascii() and sub.isdigit() and isinstance(email, str)):
            raise NotAuthorizedException("Invalid token")
        if sid is not None and not isinstance(sid, str):
            raise NotAuthorizedException("Invalid token")
        if claims["iat"] > time.time() + cls.leeway_seconds:
            raise NotAuthorizedException("Invalid token")
        try:
            expires, issued = (
                datetime.fromtimestamp(claims["exp"], UTC),
                datetime.fromtimestamp(claims["iat"], UTC),
            )
        except (OverflowError, OSError, ValueError):  # a timestamp no calendar holds
            raise NotAuthorizedException("Invalid token") from None
        return cls(
            exp=expires,
            sub=sub,
            iat=issued,
            iss=claims.get("iss"),
            aud=claims.get("aud"),
            jti=claims["jti"],
            email=email,
            sid=sid,
        )


def new_refresh_token() -> tuple[str, str]:
    """A fresh opaque refresh token and the digest that is all the database keeps of it."""
    token = secrets.token_urlsafe(32)
    return token, refresh_token_digest(token)


def refresh_token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
