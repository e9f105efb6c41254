"""The access token over HTTP: its claims and lifetime, the Bearer scheme, and every malformed,
forged, expired or missing token answered 401."""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from helpers import PASSWORD, assert_error, bearer, both_backends
from litestar.testing import AsyncTestClient

from todo_svc.app import create_app

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
TOKEN_CLAIMS = {"sub", "email", "iat", "exp", "jti", "sid"}


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


@both_backends
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

    response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == ann.id


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
async def test_bearer_scheme_is_case_insensitive(client, ann, scheme) -> None:
    response = await client.get(ME, headers=bearer(ann.token, scheme))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == ann.id


async def test_iat_a_few_seconds_ahead_is_accepted(client, ann, settings) -> None:
    """Clock skew between instances: an `iat` within the leeway is fine."""
    ahead = max(settings.jwt_leeway_seconds // 2, 1)
    now = int(time.time())
    token = sign(claims_for(ann.id, iat=now + ahead), settings.jwt_secret_key)

    response = await client.get(ME, headers=bearer(token))

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
        response = await client.request(method, ME, headers=bearer("garbage"))
        assert_error(response, 401)
    assert (await client.get(ME, headers=ann.headers)).status_code == 200
