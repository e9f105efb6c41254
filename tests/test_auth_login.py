"""Logging in over HTTP: the token pair, email matching, and a wrong password or an unknown email that
look (and cost) the same."""

from __future__ import annotations

import pytest
from helpers import assert_error, assert_token_pair, bearer, both_backends, stored_user

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"


@both_backends
async def test_login_returns_a_token_pair_for_the_account(client, ann) -> None:
    response = await client.post(LOGIN, json={"email": ann.email, "password": ann.password})

    assert response.status_code == 200, response.text
    body = response.json()
    assert_token_pair(body, ann.email)
    assert body["user"]["id"] == ann.id
    assert response.headers["cache-control"] == "no-store"
    assert ann.password not in response.text

    me = await client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == ann.id


@both_backends
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
