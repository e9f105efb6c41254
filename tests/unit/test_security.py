"""Password hashing (bcrypt, pre-hashed, off the event loop) and the access-token claims."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import bcrypt
import jwt
import pytest
from litestar.exceptions import NotAuthorizedException

from todo_svc.api import tokens
from todo_svc.api.auth import build_jwt_auth
from todo_svc.api.tokens import AccessToken
from todo_svc.core.passwords import PasswordHasher
from todo_svc.settings import Settings

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"


async def test_hash_then_verify(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("correct horse battery")

    assert hashed.startswith("$2b$04$")  # bcrypt at the configured cost
    assert "correct horse battery" not in hashed
    assert await hasher.verify("correct horse battery", hashed) is True
    assert await hasher.verify("correct horse batterY", hashed) is False
    assert await hasher.verify("", hashed) is False


async def test_the_same_password_hashes_differently_each_time(hasher: PasswordHasher) -> None:
    first = await hasher.hash("correct horse battery")
    second = await hasher.hash("correct horse battery")

    assert first != second  # salted
    assert await hasher.verify("correct horse battery", first)
    assert await hasher.verify("correct horse battery", second)


async def test_passwords_differing_after_72_bytes_are_not_equal(hasher: PasswordHasher) -> None:
    shared = "a" * 72
    hashed = await hasher.hash(shared + "-first")

    assert await hasher.verify(shared + "-first", hashed) is True
    assert await hasher.verify(shared + "-second", hashed) is False
    assert await hasher.verify(shared, hashed) is False


async def test_a_128_character_multibyte_password_works(hasher: PasswordHasher) -> None:
    password = "é" * 128
    assert len(password.encode()) == 256  # far past bcrypt's 72-byte limit

    hashed = await hasher.hash(password)

    assert await hasher.verify(password, hashed) is True
    assert await hasher.verify("é" * 127 + "e", hashed) is False
    assert await hasher.verify("é" * 36, hashed) is False  # the first 72 bytes alone


async def test_verify_without_hash_fails_but_still_runs_bcrypt(
    hasher: PasswordHasher, bcrypt_checks: list[bytes]
) -> None:
    """An unknown account costs the same bcrypt check as a wrong password (no enumeration by timing)."""
    checked = bcrypt_checks

    assert await hasher.verify("correct horse battery", None) is False
    assert await hasher.verify("dummy password for unknown accounts", None) is False
    assert len(checked) == 2
    assert all(h.startswith(b"$2b$04$") for h in checked)  # a real hash at the same cost


async def test_hashing_and_checking_run_off_the_event_loop(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real_hashpw, real_checkpw = bcrypt.hashpw, bcrypt.checkpw

    def hashpw(password: bytes, salt: bytes) -> bytes:
        threads.append(threading.current_thread().name)
        return real_hashpw(password, salt)

    def checkpw(password: bytes, hashed_password: bytes) -> bool:
        threads.append(threading.current_thread().name)
        return real_checkpw(password, hashed_password)

    monkeypatch.setattr(bcrypt, "hashpw", hashpw)
    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    loop_thread = threading.current_thread().name

    hashed = await hasher.hash("correct horse battery")
    assert await hasher.verify("correct horse battery", hashed)

    assert len(threads) == 2
    assert all(name.startswith("bcrypt") for name in threads), threads
    assert loop_thread not in threads


def _decode(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = jwt.decode(
        token, key=SECRET, algorithms=["HS256"], options={"verify_exp": True, "verify_iat": True}
    )
    return payload


def test_access_token_claims_are_top_level_without_extras() -> None:
    now = datetime.now(UTC)
    token = AccessToken(
        sub="7",
        exp=now + timedelta(minutes=15),
        iat=now,
        jti="abc123",
        email="ann@example.org",
    ).encode(SECRET, "HS256")

    payload = _decode(token)

    assert "extras" not in payload
    assert set(payload) == {"sub", "email", "iat", "exp", "jti"}
    assert payload["sub"] == "7"
    assert payload["email"] == "ann@example.org"
    assert payload["jti"] == "abc123"
    assert payload["exp"] - payload["iat"] == 15 * 60
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_access_token_round_trips_through_decode() -> None:
    now = datetime.now(UTC)
    encoded = AccessToken(
        sub="7", exp=now + timedelta(minutes=15), iat=now, jti="j", email="ann@example.org"
    ).encode(SECRET, "HS256")

    decoded = AccessToken.decode(encoded, SECRET, "HS256")

    assert decoded.sub == "7"
    assert decoded.email == "ann@example.org"
    assert decoded.jti == "j"
    assert decoded.extras == {}


def test_tokens_issued_by_the_app_carry_the_contract_claims() -> None:
    settings = Settings(environment="test", jwt_secret_key=SECRET, access_token_expire_minutes=15)
    jwt_auth = build_jwt_auth(settings)

    token = jwt_auth.create_token(
        identifier="42",
        token_expiration=jwt_auth.default_token_expiration,
        token_unique_jwt_id="jti-1",
        email="bob@example.org",
    )
    payload = _decode(token)

    assert "extras" not in payload
    assert {"sub", "email", "iat", "exp", "jti"} <= set(payload)
    assert payload["sub"] == "42"
    assert payload["email"] == "bob@example.org"
    assert payload["exp"] - payload["iat"] == 15 * 60


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified tokens are cached, but each use checks `exp` against the clock again."""
    secret, now = "remembered-token-secret-of-32-bytes-or-more", int(time.time())
    claims = {"sub": "7", "email": "a@example.org", "iat": now, "exp": now + 60, "jti": "once"}
    token = jwt.encode(claims, secret, algorithm="HS256")
    assert AccessToken.decode(token, secret, "HS256").sub == "7"
    assert AccessToken.decode(token, secret, "HS256").sub == "7"  # the remembered one

    expired = now + 60 + AccessToken.leeway_seconds + 1
    monkeypatch.setattr(tokens, "time", SimpleNamespace(time=lambda: expired))
    with pytest.raises(NotAuthorizedException):
        AccessToken.decode(token, secret, "HS256")
