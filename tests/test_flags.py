"""Feature flags from the environment: a closed deployment, and one without public docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from conftest import Account, make_settings
from helpers import assert_error
from litestar import Litestar
from litestar.testing import AsyncTestClient

from todo_svc.app import create_app
from todo_svc.settings import load_settings

CREDENTIALS = {"email": "newcomer@example.org", "password": "correct horse battery"}


@asynccontextmanager
async def app_with(database_url: str, **flags: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(make_settings(database_url, **flags))) as client:
        yield client


@pytest.mark.parametrize("path", ["/api/v1/auth/register", "/auth/register"])
async def test_a_closed_deployment_refuses_registration_with_a_clear_403(
    database_url: str, client: Any, path: str
) -> None:
    async with app_with(database_url, registration_enabled=False) as closed:
        response = await closed.post(path, json=CREDENTIALS)
        invalid = await closed.post(path, json={"email": "not an email"})
    body = assert_error(response, 403)
    assert "registration is closed" in body["detail"].lower()
    assert invalid.status_code == 403  # closed before the body is even read
    async with app_with(database_url) as open_deployment:
        login = await open_deployment.post("/api/v1/auth/login", json=CREDENTIALS)
    assert login.status_code == 401  # nothing was created


async def test_existing_accounts_still_log_in_when_registration_is_closed(
    database_url: str, ann: Account
) -> None:
    async with app_with(database_url, registration_enabled=False) as closed:
        credentials = {"email": ann.email, "password": ann.password}
        response = await closed.post("/api/v1/auth/login", json=credentials)
    assert response.status_code == 200


async def test_docs_and_openapi_can_be_turned_off(database_url: str, client: Any) -> None:
    async with app_with(database_url, docs_enabled=False) as no_docs:
        for path in ("/docs", "/docs/redoc", "/docs/openapi.json", "/docs/openapi.yaml"):
            response = await no_docs.get(path)
            assert_error(response, 404)
        assert (await no_docs.get("/health")).status_code == 200
    async with app_with(database_url) as with_docs:
        assert (await with_docs.get("/docs/openapi.json")).status_code == 200


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("REGISTRATION_ENABLED", "false", "registration_enabled", False),
        ("REGISTRATION_ENABLED", "0", "registration_enabled", False),
        ("REGISTRATION_ENABLED", "true", "registration_enabled", True),
        ("DOCS_ENABLED", "false", "docs_enabled", False),
    ],
)
def test_flags_are_read_from_the_environment(variable: str, value: str, field: str, expected: bool) -> None:
    settings = load_settings({variable: value, "JWT_SECRET_KEY": "k" * 40}, env_file=None)
    assert getattr(settings, field) is expected


def test_both_flags_are_on_by_default() -> None:
    settings = load_settings({"JWT_SECRET_KEY": "k" * 40}, env_file=None)
    assert settings.registration_enabled is True
    assert settings.docs_enabled is True
