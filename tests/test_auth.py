"""Register, login, the caller's account and access-token handling, over HTTP.

Tests marked `both` also run on SQLite; the rest run on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

import httpx
import jwt
import msgspec
import pytest
from conftest import concurrently
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from todo_svc.app import create_app

both = pytest.mark.backends("postgresql", "sqlite")

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
PASSWORD = "correct horse battery"
ERROR_KEYS = {"error", "detail", "status_code", "timestamp", "request_id"}
TOKEN_CLAIMS = {"sub", "email", "iat", "exp", "jti", "sid"}


# --- helpers -------------------------------------------------------------------------------------


def parse_timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), f"{value} is not UTC with an explicit offset"
    return parsed


def assert_error(response: Any, status: int) -> dict[str, Any]:
    """The contract's error body (and `WWW-Authenticate: Bearer` on 401)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert ERROR_KEYS <= set(body) <= {*ERROR_KEYS, "errors"}, body
    assert body["error"] == HTTPStatus(status).phrase
    assert body["status_code"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    parse_timestamp(body["timestamp"])
    assert body["request_id"] == response.headers["x-request-id"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer"), response.headers
    return body


def assert_field_error(response: Any, field: str) -> dict[str, Any]:
    body = assert_error(response, 400)
    fields = [error["field"] for error in body.get("errors", [])]
    assert field in fields, body
    for error in body["errors"]:
        assert isinstance(error["message"], str)
        assert error["message"]
    return body


def assert_user(user: dict[str, Any], email: str) -> None:
    assert set(user) == {"id", "email", "created_at", "updated_at"}
    assert isinstance(user["id"], int)
    assert user["id"] > 0
    assert user["email"] == email
    assert parse_timestamp(user["created_at"]) <= parse_timestamp(user["updated_at"])


def assert_token_pair(body: dict[str, Any], email: str, expires_in: int = 900) -> None:
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == expires_in
    assert isinstance(body["access_token"], str)
    assert body["access_token"].count(".") == 2
    assert_user(body["user"], email)


def keys_and_strings(value: Any) -> list[str]:
    """Every key and string value anywhere in a JSON document."""
    if isinstance(value, dict):
        return list(value) + [s for v in value.values() for s in keys_and_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in keys_and_strings(v)]
    return [value] if isinstance(value, str) else []


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(user_id: int | str, email: str = "ann@example.org", **changes: Any) -> dict[str, Any]:
    """Valid access-token claims; `changes` override them, a value of `...` drops the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "email": email,
        "iat": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not ...}


def sign(claims: dict[str, Any], key: Any, algorithm: str = "HS256") -> str:
    with warnings.catch_warnings():  # PyJWT warns about short HMAC keys for HS512
        warnings.simplefilter("ignore")
        return jwt.encode(claims, key, algorithm=algorithm)


def auth(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


async def stored_user(engine: Any, email: str) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT id, email, password_hash FROM users WHERE lower(email) = :email"),
                {"email": email.lower()},
            )
        ).first()
    return dict(row._mapping) if row else None


async def count(engine: Any, sql: str, **params: Any) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())


# --- register ------------------------------------------------------------------------------------


@both
async def test_register_returns_a_token_pair_and_the_user_without_secrets(client, engine, settings) -> None:
    response = await client.post(REGISTER, json={"email": "ann@example.org", "password": PASSWORD})

    assert response.status_code == 201, response.text
    body = response.json()
    assert_token_pair(body, "ann@example.org")
    assert response.headers["cache-control"] == "no-store"

    stored = await stored_user(engine, "ann@example.org")
    assert stored is not None
    assert stored["id"] == body["user"]["id"]
    assert stored["password_hash"] not in response.text
    assert PASSWORD not in response.text
    assert not [s for s in keys_and_strings(body) if "password" in s.lower() or s.startswith("$2")]

    me = await client.get(ME, headers=auth(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json() == body["user"]


@both
async def test_register_trims_and_lower_cases_the_email(client) -> None:
    response = await client.post(REGISTER, json={"email": "  Ann.Lee@Example.ORG \t", "password": PASSWORD})

    assert response.status_code == 201, response.text
    assert response.json()["user"]["email"] == "ann.lee@example.org"


@both
async def test_register_same_email_in_another_case_is_a_conflict(client, engine) -> None:
    first = await client.post(REGISTER, json={"email": "Ann@X.org", "password": PASSWORD})
    assert first.status_code == 201, first.text

    again = await client.post(REGISTER, json={"email": "ann@x.org", "password": "another password"})

    body = assert_error(again, 409)
    assert "exists" in body["detail"]
    assert "errors" not in body
    assert await count(engine, "SELECT count(*) FROM users") == 1


async def test_register_accepts_an_email_of_exactly_254_characters(client) -> None:
    email = "a" * 64 + "@" + "b" * 185 + ".org"
    assert len(email) == 254

    response = await client.post(REGISTER, json={"email": email, "password": PASSWORD})

    assert response.status_code == 201, response.text
    assert response.json()["user"]["email"] == email


async def test_register_accepts_passwords_of_8_and_128_characters(client) -> None:
    for number, password in enumerate(("p" * 8, "p" * 128)):
        response = await client.post(
            REGISTER, json={"email": f"edge{number}@example.org", "password": password}
        )
        assert response.status_code == 201, response.text


LONG_EMAIL = "a" * 64 + "@" + "b" * 186 + ".org"  # 255 characters
BAD_BODIES = [
    pytest.param({"email": "not-an-email", "password": PASSWORD}, "email", id="email-without-at"),
    pytest.param({"email": "ann@", "password": PASSWORD}, "email", id="email-without-domain"),
    pytest.param({"email": "@example.org", "password": PASSWORD}, "email", id="email-without-local-part"),
    pytest.param({"email": "ann lee@example.org", "password": PASSWORD}, "email", id="email-with-space"),
    pytest.param({"email": "ann@@example.org", "password": PASSWORD}, "email", id="email-with-two-ats"),
    pytest.param({"email": "", "password": PASSWORD}, "email", id="email-empty"),
    pytest.param({"email": "   ", "password": PASSWORD}, "email", id="email-blank"),
    pytest.param({"email": LONG_EMAIL, "password": PASSWORD}, "email", id="email-255-chars"),
    pytest.param({"email": "ann\u0000@example.org", "password": PASSWORD}, "email", id="email-with-nul"),
    pytest.param({"email": "ann@example.org", "password": "Xy7#pQ2"}, "password", id="password-7-chars"),
    pytest.param({"email": "ann@example.org", "password": "Xy7#pQ2" * 18 + "abc"}, "password", id="pw-129"),
    pytest.param({"email": "ann@example.org", "password": ""}, "password", id="password-empty"),
    pytest.param({"password": PASSWORD}, "email", id="missing-email"),
    pytest.param({"email": "ann@example.org"}, "password", id="missing-password"),
    pytest.param(
        {"email": "ann@example.org", "password": PASSWORD, "is_admin": True}, "is_admin", id="unknown"
    ),
    pytest.param({"email": "ann@example.org", "password": 12345678}, "password", id="password-as-number"),
    pytest.param({"email": "ann@example.org", "password": None}, "password", id="password-null"),
    pytest.param({"email": "ann@example.org", "password": ["a" * 8]}, "password", id="password-as-list"),
    pytest.param({"email": 42, "password": PASSWORD}, "email", id="email-as-number"),
    pytest.param({"email": None, "password": PASSWORD}, "email", id="email-null"),
]


@pytest.mark.parametrize("path", [REGISTER, LOGIN])
@pytest.mark.parametrize(("payload", "field"), BAD_BODIES)
async def test_invalid_credentials_body_is_400_naming_the_field(client, engine, path, payload, field) -> None:
    response = await client.post(path, json=payload)

    body = assert_field_error(response, field)
    assert body["detail"].startswith("Request body")
    password = payload.get("password")
    if isinstance(password, str) and password:
        assert password not in response.text
    assert await count(engine, "SELECT count(*) FROM users") == 0


@pytest.mark.parametrize("path", [REGISTER, LOGIN])
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"email": "ann@example.org", "password": ', id="truncated"),
        pytest.param(b"{'email': 'ann@example.org'}", id="single-quotes"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"email": "ann@example.org", "password": "abc\x00defgh"}', id="raw-nul-in-string"),
        pytest.param(b"\x00", id="nul-byte"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
    ],
)
async def test_malformed_json_is_400(client, path, raw) -> None:
    response = await client.post(path, content=raw, headers={"Content-Type": "application/json"})

    body = assert_field_error(response, "body")
    assert body["detail"] == "Request body is not valid JSON"


@pytest.mark.parametrize("path", [REGISTER, LOGIN])
@pytest.mark.parametrize(
    "document", [[], "ann@example.org", 42, None], ids=["array", "string", "int", "null"]
)
async def test_body_that_is_not_an_object_is_400(client, path, document) -> None:
    response = await client.post(path, json=document)

    assert_error(response, 400)


async def test_nul_in_password_is_never_a_500_and_never_truncates(client) -> None:
    """A NUL inside the password: bcrypt must not stop at it (C strings); refusing it is fine too."""
    password = "first\u0000half-of-the-password"
    registered = await client.post(REGISTER, json={"email": "nul@example.org", "password": password})

    if registered.status_code == 400:
        assert_field_error(registered, "password")
        return
    assert registered.status_code == 201, registered.text
    same = await client.post(LOGIN, json={"email": "nul@example.org", "password": password})
    assert same.status_code == 200, same.text
    other = await client.post(LOGIN, json={"email": "nul@example.org", "password": "first\u0000other-ending"})
    assert_error(other, 401)


# --- login ---------------------------------------------------------------------------------------


@both
async def test_login_returns_a_token_pair_for_the_account(client, ann) -> None:
    response = await client.post(LOGIN, json={"email": ann.email, "password": ann.password})

    assert response.status_code == 200, response.text
    body = response.json()
    assert_token_pair(body, ann.email)
    assert body["user"]["id"] == ann.id
    assert response.headers["cache-control"] == "no-store"
    assert ann.password not in response.text

    me = await client.get(ME, headers=auth(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == ann.id


@both
async def test_login_compares_email_case_insensitively_and_trimmed(client, ann) -> None:
    response = await client.post(LOGIN, json={"email": "  ANN@Example.ORG\n", "password": ann.password})

    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == ann.id


async def test_wrong_password_and_unknown_email_look_the_same(client, ann) -> None:
    wrong_password = await client.post(LOGIN, json={"email": ann.email, "password": "not the password"})
    unknown_email = await client.post(LOGIN, json={"email": "nobody@example.org", "password": ann.password})

    wrong_body = assert_error(wrong_password, 401)
    unknown_body = assert_error(unknown_email, 401)
    assert wrong_body["detail"] == unknown_body["detail"]
    assert wrong_password.headers["www-authenticate"] == unknown_email.headers["www-authenticate"]
    assert wrong_password.headers["www-authenticate"].startswith("Bearer")
    assert "errors" not in wrong_body
    assert "errors" not in unknown_body
    assert "not the password" not in wrong_password.text
    assert ann.password not in unknown_email.text


async def test_password_is_case_sensitive(client, ann) -> None:
    response = await client.post(LOGIN, json={"email": ann.email, "password": ann.password.upper()})

    assert_error(response, 401)


@pytest.mark.parametrize(
    ("prefix", "label"),
    [
        pytest.param("a" * 72, "ascii", id="ascii"),
        pytest.param("é" * 36, "two-byte", id="two-byte"),
        pytest.param("€" * 24, "three-byte", id="three-byte"),
    ],
)
async def test_passwords_equal_in_their_first_72_bytes_are_different(client, register, prefix, label) -> None:
    assert len(prefix.encode()) == 72
    account = await register(f"{label}@example.org", password=prefix + "-the-real-ending")

    impostor = await client.post(LOGIN, json={"email": account.email, "password": prefix + "-another-ending"})
    prefix_only = await client.post(LOGIN, json={"email": account.email, "password": prefix})
    genuine = await client.post(LOGIN, json={"email": account.email, "password": account.password})

    assert_error(impostor, 401)
    assert_error(prefix_only, 401)
    assert genuine.status_code == 200, genuine.text


async def test_a_128_character_password_of_4_byte_characters_works(client, register) -> None:
    password = "🔑" * 128  # 512 bytes: bcrypt alone would refuse (bcrypt 5) or truncate it
    account = await register("keys@example.org", password=password)

    genuine = await client.post(LOGIN, json={"email": account.email, "password": password})
    other = await client.post(LOGIN, json={"email": account.email, "password": "🔑" * 127 + "🔒"})

    assert genuine.status_code == 200, genuine.text
    assert_error(other, 401)


async def test_login_with_unknown_email_still_checks_a_bcrypt_hash(
    client, ann, engine, bcrypt_checks
) -> None:
    checked = bcrypt_checks

    unknown = await client.post(LOGIN, json={"email": "nobody@example.org", "password": "some password"})
    assert_error(unknown, 401)
    assert len(checked) == 1, "an unknown email must cost a bcrypt check like a wrong password does"

    wrong = await client.post(LOGIN, json={"email": ann.email, "password": "some password"})
    assert_error(wrong, 401)
    assert len(checked) == 2

    stored = await stored_user(engine, ann.email)
    assert stored is not None
    real_hash = stored["password_hash"].encode()
    assert checked[1] == real_hash
    # The stand-in hash costs as much as a real one: same bcrypt variant and cost factor.
    assert checked[0] != real_hash
    assert checked[0].split(b"$")[1:3] == real_hash.split(b"$")[1:3]


# --- the access token ----------------------------------------------------------------------------


@both
async def test_access_token_claims(client, ann, settings) -> None:
    token = ann.token

    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, settings.jwt_secret_key, algorithms=["HS256"])

    assert header["alg"] == "HS256"
    assert TOKEN_CLAIMS <= set(claims) <= {*TOKEN_CLAIMS, "iss", "aud"}, claims
    assert "extras" not in claims
    assert claims["sub"] == str(ann.id)
    assert claims["email"] == ann.email
    assert isinstance(claims["iat"], int)
    assert isinstance(claims["exp"], int)
    assert abs(claims["exp"] - claims["iat"] - 15 * 60) <= 1
    assert isinstance(claims["jti"], str)
    assert claims["jti"]


async def test_every_token_has_its_own_jti(client, ann, settings) -> None:
    logins = [await client.post(LOGIN, json={"email": ann.email, "password": ann.password}) for _ in range(3)]

    tokens = [ann.token] + [response.json()["access_token"] for response in logins]
    jtis = {jwt.decode(token, settings.jwt_secret_key, algorithms=["HS256"])["jti"] for token in tokens}
    assert len(jtis) == len(tokens)


async def test_token_lifetime_follows_the_setting(client, settings) -> None:
    short_lived = create_app(msgspec.structs.replace(settings, access_token_expire_minutes=5))
    async with AsyncTestClient(app=short_lived) as other_client:
        response = await other_client.post(
            REGISTER, json={"email": "short@example.org", "password": PASSWORD}
        )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["expires_in"] == 300
    claims = jwt.decode(body["access_token"], settings.jwt_secret_key, algorithms=["HS256"])
    assert abs(claims["exp"] - claims["iat"] - 300) <= 1


async def test_a_token_built_like_the_servers_is_accepted(client, ann, settings) -> None:
    """The control for the rejections below: these helpers make tokens the API accepts."""
    token = sign(claims_for(ann.id), settings.jwt_secret_key)

    response = await client.get(ME, headers=auth(token))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == ann.id


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
async def test_bearer_scheme_is_case_insensitive(client, ann, scheme) -> None:
    response = await client.get(ME, headers=auth(ann.token, scheme))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == ann.id


async def test_iat_a_few_seconds_ahead_is_accepted(client, ann, settings) -> None:
    """Clock skew between instances: an `iat` within the leeway is fine."""
    ahead = max(settings.jwt_leeway_seconds // 2, 1)
    now = int(time.time())
    token = sign(claims_for(ann.id, iat=now + ahead), settings.jwt_secret_key)

    response = await client.get(ME, headers=auth(token))

    assert response.status_code == 200, response.text


TokenFactory = Callable[[Any, Any], str]  # (account, settings) -> Authorization header value


def _tampered(account: Any, settings: Any) -> str:
    """The server's own token with its payload edited (exp pushed back) and the signature kept."""
    head, payload, signature = account.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] += 3600
    return f"Bearer {head}.{b64url(json.dumps(claims).encode())}.{signature}"


def _rs256(account: Any, settings: Any) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return "Bearer " + sign(claims_for(account.id, account.email), key, "RS256")


def _alg_none(account: Any, settings: Any) -> str:
    return "Bearer " + jwt.encode(claims_for(account.id, account.email), None, algorithm="none")


def _alg_none_with_signature(account: Any, settings: Any) -> str:
    _head, payload, signature = account.token.split(".")
    none_head = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"Bearer {none_head}.{payload}.{signature}"


def _valid_claims(**changes: Any) -> TokenFactory:
    def factory(account: Any, settings: Any) -> str:
        return "Bearer " + sign(claims_for(account.id, account.email, **changes), settings.jwt_secret_key)

    return factory


def _now(offset: int) -> int:
    return int(time.time()) + offset


BAD_AUTHORIZATION: list[Any] = [
    pytest.param(lambda a, s: f"Basic {a.token}", id="basic-scheme"),
    pytest.param(lambda a, s: f"Token {a.token}", id="token-scheme"),
    pytest.param(lambda a, s: a.token, id="no-scheme"),
    pytest.param(lambda a, s: "Bearer", id="bearer-without-token"),
    pytest.param(lambda a, s: "Bearer    ", id="bearer-blank"),
    pytest.param(lambda a, s: "Bearer not-a-jwt", id="garbage"),
    pytest.param(lambda a, s: "Bearer a.b.c", id="garbage-three-parts"),
    pytest.param(lambda a, s: f"Bearer {a.token}x", id="signature-changed"),
    pytest.param(lambda a, s: f"Bearer {a.token} {a.token}", id="two-tokens"),
    pytest.param(
        lambda a, s: "Bearer " + sign(claims_for(a.id, a.email), "another-secret-key-that-is-long-enough-0"),
        id="another-key",
    ),
    pytest.param(_alg_none, id="alg-none"),
    pytest.param(_alg_none_with_signature, id="alg-none-header-on-real-token"),
    pytest.param(_rs256, id="rs256"),
    pytest.param(
        lambda a, s: "Bearer " + sign(claims_for(a.id, a.email), s.jwt_secret_key, "HS512"), id="hs512"
    ),
    pytest.param(
        lambda a, s: "Bearer " + sign(claims_for(a.id, a.email), s.jwt_secret_key, "HS384"), id="hs384"
    ),
    pytest.param(_tampered, id="tampered-payload"),
    pytest.param(
        lambda a, s: _valid_claims(iat=_now(-3600), exp=_now(-60 - s.jwt_leeway_seconds))(a, s), id="exp"
    ),
    pytest.param(_valid_claims(jti=...), id="missing-jti"),
    pytest.param(_valid_claims(exp=...), id="missing-exp"),
    pytest.param(_valid_claims(sub=...), id="missing-sub"),
    pytest.param(_valid_claims(iat=...), id="missing-iat"),
    pytest.param(_valid_claims(sub="ann"), id="sub-not-numeric"),
    pytest.param(_valid_claims(sub=""), id="sub-empty"),
    pytest.param(_valid_claims(sub="-1"), id="sub-negative"),
    pytest.param(_valid_claims(sub="1.0"), id="sub-decimal"),
    pytest.param(_valid_claims(sub="\u0661"), id="sub-arabic-digit"),
    pytest.param(_valid_claims(sub="0"), id="sub-zero"),
    pytest.param(_valid_claims(sub="9" * 40), id="sub-huge"),
    pytest.param(lambda a, s: _valid_claims(sub=a.id)(a, s), id="sub-json-number"),
    pytest.param(_valid_claims(exp="tomorrow"), id="exp-not-a-number"),
    pytest.param(_valid_claims(iat="now"), id="iat-not-a-number"),
    pytest.param(_valid_claims(exp=10**20), id="exp-beyond-any-calendar"),
    pytest.param(
        lambda a, s: "Bearer " + sign({**claims_for(a.id, a.email), "email": 42}, s.jwt_secret_key),
        id="email-not-a-string",
    ),
    pytest.param(lambda a, s: _valid_claims(iat=_now(3600), exp=_now(4500))(a, s), id="iat-far-future"),
]


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION)
async def test_bad_authorization_is_401(client, ann, settings, authorization) -> None:
    header = authorization(ann, settings)

    response = await client.get(ME, headers={"Authorization": header})

    body = assert_error(response, 401)
    assert "errors" not in body
    token = header.partition(" ")[2].strip() or header
    assert token not in body["detail"]


async def test_an_expired_token_says_so_and_a_forged_one_does_not(client, ann, settings) -> None:
    """RFC 6750: a client can tell "refresh now" from "log in again"."""
    expired = _valid_claims(iat=_now(-3600), exp=_now(-60 - settings.jwt_leeway_seconds))(ann, settings)
    forged_claims = {**claims_for(ann.id, ann.email), "iat": _now(-3600), "exp": _now(-600)}
    forged = "Bearer " + sign(forged_claims, "another-secret-key-that-is-long-enough-0")

    expired_answer = await client.get(ME, headers={"Authorization": expired})
    forged_answer = await client.get(ME, headers={"Authorization": forged})

    body = assert_error(expired_answer, 401)
    assert "expired" in body["detail"]
    assert "refresh" in body["detail"]
    challenge = expired_answer.headers["www-authenticate"]
    assert challenge == 'Bearer error="invalid_token", error_description="The access token expired"'
    forged_body = assert_error(forged_answer, 401)
    assert "expired" not in forged_body["detail"]
    assert forged_answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_no_authorization_header_is_401(client, ann) -> None:
    response = await client.get(ME)

    body = assert_error(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert "errors" not in body


async def test_401_on_every_account_method(client, ann) -> None:
    for method in ("GET", "DELETE"):
        response = await client.request(method, ME, headers=auth("garbage"))
        assert_error(response, 401)
    assert (await client.get(ME, headers=ann.headers)).status_code == 200


# --- the caller's account ------------------------------------------------------------------------


@both
async def test_get_me_returns_the_callers_account(client, ann, bob) -> None:
    as_ann = await client.get(ME, headers=ann.headers)
    as_bob = await client.get(ME, headers=bob.headers)

    assert as_ann.status_code == 200, as_ann.text
    assert as_bob.status_code == 200, as_bob.text
    assert_user(as_ann.json(), ann.email)
    assert_user(as_bob.json(), bob.email)
    assert as_ann.json()["id"] == ann.id
    assert as_bob.json()["id"] == bob.id
    assert as_ann.headers["cache-control"] == "no-store"


@both
async def test_delete_me_removes_the_account_and_its_tasks(client, register, engine) -> None:
    bob = await register("bob@example.org")
    ann = await register("ann@example.org")  # the newest account: its id is the highest
    for owner, title in ((ann, "one"), (ann, "two"), (bob, "bob's")):
        created = await client.post(owner.tasks_url, json={"title": title}, headers=owner.headers)
        assert created.status_code == 201, created.text

    deleted = await client.delete(ME, headers=ann.headers)

    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    # The token has not expired, but its account is gone.
    assert_error(await client.get(ME, headers=ann.headers), 401)
    assert_error(await client.delete(ME, headers=ann.headers), 401)
    assert_error(await client.post(ann.tasks_url, json={"title": "x"}, headers=ann.headers), 401)
    assert await count(engine, "SELECT count(*) FROM users WHERE id = :id", id=ann.id) == 0
    assert await count(engine, "SELECT count(*) FROM tasks WHERE user_id = :id", id=ann.id) == 0
    # Nobody else's data goes with it.
    assert await count(engine, "SELECT count(*) FROM tasks WHERE user_id = :id", id=bob.id) == 1
    assert (await client.get(ME, headers=bob.headers)).status_code == 200

    login = await client.post(LOGIN, json={"email": ann.email, "password": ann.password})
    assert_error(login, 401)

    again = await client.post(REGISTER, json={"email": ann.email, "password": "a brand new password"})
    assert again.status_code == 201, again.text
    assert_token_pair(again.json(), ann.email)
    fresh = await client.get(ME, headers=auth(again.json()["access_token"]))
    assert fresh.status_code == 200
    assert fresh.json() == again.json()["user"]
    new_password = await client.post(LOGIN, json={"email": ann.email, "password": "a brand new password"})
    assert new_password.status_code == 200, new_password.text
    assert_error(await client.post(LOGIN, json={"email": ann.email, "password": ann.password}), 401)


@both
async def test_a_deleted_accounts_token_never_opens_a_later_account(client, register) -> None:
    """Ids of deleted accounts must not be handed out again: live tokens still carry them."""
    await register("bob@example.org")
    ann = await register("ann@example.org")  # the newest account: its id is the highest
    assert (await client.delete(ME, headers=ann.headers)).status_code == 204

    carol = await register("carol@example.org")
    created = await client.post(carol.tasks_url, json={"title": "carol's secret"}, headers=carol.headers)
    assert created.status_code == 201, created.text

    stale_me = await client.get(ME, headers=ann.headers)
    stale_tasks = await client.get(carol.tasks_url, headers=ann.headers)

    assert_error(stale_me, 401)
    assert stale_tasks.status_code in (401, 403), stale_tasks.text
    assert "carol" not in stale_me.text + stale_tasks.text


# --- concurrency ---------------------------------------------------------------------------------


async def test_simultaneous_registrations_of_one_email_create_one_account(client, engine) -> None:
    spellings = ["race@example.org", "Race@Example.org", " RACE@EXAMPLE.ORG "]

    async def register_all(concurrent: httpx.AsyncClient) -> list[httpx.Response]:
        return await asyncio.gather(
            *(
                concurrent.post(
                    REGISTER, json={"email": spellings[i % len(spellings)], "password": f"password-{i}"}
                )
                for i in range(10)
            )
        )

    responses = await concurrently(client, register_all)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 9, [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409)
    assert await count(engine, "SELECT count(*) FROM users WHERE lower(email) = 'race@example.org'") == 1

    winner = next(r for r in responses if r.status_code == 201).json()
    me = await client.get(ME, headers=auth(winner["access_token"]))
    assert me.status_code == 200
    assert me.json() == winner["user"]


# --- legacy routes -------------------------------------------------------------------------------


def successor(response: Any) -> str:
    link = response.headers["link"]
    assert link.startswith("<"), link
    target, _, params = link[1:].partition(">")
    assert 'rel="successor-version"' in params
    return target


async def test_legacy_register_and_login_work_and_are_marked_deprecated(client) -> None:
    registered = await client.post("/auth/register", json={"email": " Old@Example.org", "password": PASSWORD})

    assert registered.status_code == 201, registered.text
    assert_token_pair(registered.json(), "old@example.org")
    assert registered.headers["deprecation"] == "true"
    assert successor(registered) == "/api/v1/auth/register"

    logged_in = await client.post("/auth/login", json={"email": "OLD@example.org", "password": PASSWORD})

    assert logged_in.status_code == 200, logged_in.text
    assert_token_pair(logged_in.json(), "old@example.org")
    assert logged_in.headers["deprecation"] == "true"
    assert successor(logged_in) == "/api/v1/auth/login"

    for token in (registered.json()["access_token"], logged_in.json()["access_token"]):
        me = await client.get(ME, headers=auth(token))
        assert me.status_code == 200
        assert me.json() == registered.json()["user"]


async def test_legacy_routes_answer_errors_like_the_canonical_ones(client, ann) -> None:
    cases = [
        ("/register", {"email": ann.email, "password": PASSWORD}, 409),
        ("/login", {"email": ann.email, "password": "not the password"}, 401),
        ("/login", {"email": "nobody@example.org", "password": PASSWORD}, 401),
        ("/register", {"email": "new@example.org", "password": 12345678}, 400),
    ]
    for path, payload, status in cases:
        legacy = await client.post(f"/auth{path}", json=payload)
        canonical = await client.post(f"/api/v1/auth{path}", json=payload)

        legacy_body = assert_error(legacy, status)
        canonical_body = assert_error(canonical, status)
        assert legacy_body["detail"] == canonical_body["detail"]
        assert legacy_body.get("errors") == canonical_body.get("errors")
        assert legacy.headers["deprecation"] == "true"
        assert successor(legacy) == f"/api/v1/auth{path}"
        assert "deprecation" not in canonical.headers
