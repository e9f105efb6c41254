"""The access-token format: Litestar's JWT `Token`, with the contract's claims and a verify cache."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import jwt
from litestar.exceptions import NotAuthorizedException
from litestar.security.jwt import Token


def _frozen(value: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
    return value if value is None or isinstance(value, str) else tuple(value)


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
