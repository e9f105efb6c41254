"""Registering an account over HTTP: the token pair it answers, what is stored, the email and
password rules, and every malformed credentials body (register and login share them)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from conftest import concurrently
from helpers import (
    PASSWORD,
    assert_error,
    assert_token_pair,
    bearer,
    both_backends,
    count_rows,
    stored_user,
)

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"


def keys_and_strings(value: Any) -> list[str]:
    """Every key and string value anywhere in a JSON document."""
    if isinstance(value, dict):
        return list(value) + [s for v in value.values() for s in keys_and_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in keys_and_strings(v)]
    return [value] if isinstance(value, str) else []


@both_backends
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

    me = await client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json() == body["user"]


@both_backends
async def test_register_trims_and_lower_cases_the_email(client) -> None:
    response = await client.post(REGISTER, json={"email": "  Ann.Lee@Example.ORG \t", "password": PASSWORD})

    assert response.status_code == 201, response.text
    assert response.json()["user"]["email"] == "ann.lee@example.org"


@both_backends
async def test_register_same_email_in_another_case_is_a_conflict(client, engine) -> None:
    first = await client.post(REGISTER, json={"email": "Ann@X.org", "password": PASSWORD})
    assert first.status_code == 201, first.text

    again = await client.post(REGISTER, json={"email": "ann@x.org", "password": "another password"})

    body = assert_error(again, 409)
    assert "exists" in body["detail"]
    assert "errors" not in body
    assert await count_rows(engine, "SELECT count(*) FROM users") == 1


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

    body = assert_error(response, 400, field=field)
    assert body["detail"].startswith("Request body")
    password = payload.get("password")
    if isinstance(password, str) and password:
        assert password not in response.text
    assert await count_rows(engine, "SELECT count(*) FROM users") == 0


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

    body = assert_error(response, 400, field="body")
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
        assert_error(registered, 400, field="password")
        return
    assert registered.status_code == 201, registered.text
    same = await client.post(LOGIN, json={"email": "nul@example.org", "password": password})
    assert same.status_code == 200, same.text
    other = await client.post(LOGIN, json={"email": "nul@example.org", "password": "first\u0000other-ending"})
    assert_error(other, 401)


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
    assert await count_rows(engine, "SELECT count(*) FROM users WHERE lower(email) = 'race@example.org'") == 1

    winner = next(r for r in responses if r.status_code == 201).json()
    me = await client.get(ME, headers=bearer(winner["access_token"]))
    assert me.status_code == 200
    assert me.json() == winner["user"]
