"""AuthService on the real PostgreSQL test database: registration (normalised email, hashed password,
one account per email even under a race), authentication without account enumeration, and deleting an
account with its tasks.

The fixtures (`auth_service`, `task_service`, `db_session`, `ann_user`…) are in service_layer.py."""

from __future__ import annotations

import jwt
import pytest
from helpers import PASSWORD
from service_layer import count_tasks
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from todo_svc.core.passwords import PasswordHasher
from todo_svc.db.models import User
from todo_svc.db.users import UserRepository
from todo_svc.services.auth import AuthService
from todo_svc.services.errors import AccountGone, EmailTaken, InvalidCredentials, RefreshTokenInvalid
from todo_svc.services.tasks import TaskService
from todo_svc.settings import Settings


async def test_register_normalises_the_email_and_hashes_the_password(auth_service: AuthService) -> None:
    user = (await auth_service.register("  Ann.Smith@Example.ORG ", PASSWORD)).user

    assert user.id is not None
    assert user.email == "ann.smith@example.org"
    assert user.password_hash != PASSWORD
    assert user.password_hash.startswith("$2b$")
    assert (await auth_service.get_account(user.id)).email == "ann.smith@example.org"


@pytest.mark.parametrize("again", ["ann@example.org", "ANN@EXAMPLE.ORG", "  Ann@Example.org  "])
async def test_register_an_existing_email_in_any_case_is_taken(
    db_session: AsyncSession, auth_service: AuthService, again: str
) -> None:
    await auth_service.register("Ann@example.org", PASSWORD)
    with pytest.raises(EmailTaken):
        await auth_service.register(again, "another password")
    assert await db_session.scalar(text("SELECT count(*) FROM users")) == 1


async def test_register_losing_a_race_is_email_taken(
    db_session: AsyncSession,
    auth_service: AuthService,
    hasher: PasswordHasher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The unique index on lower(email) catches a twin registration the lookup missed."""
    await auth_service.register("ann@example.org", PASSWORD)

    async def missed(self: UserRepository, email: str) -> None:
        return None

    monkeypatch.setattr(UserRepository, "get_by_email", missed)
    with pytest.raises(EmailTaken):
        await auth_service.register("ANN@example.org", PASSWORD)


async def test_login(auth_service: AuthService) -> None:
    user = (await auth_service.register("ann@example.org", PASSWORD)).user

    assert (await auth_service.login("ann@example.org", PASSWORD)).user.id == user.id
    assert (await auth_service.login("  ANN@Example.org ", PASSWORD)).user.id == user.id

    with pytest.raises(InvalidCredentials) as wrong_password:
        await auth_service.login("ann@example.org", PASSWORD + "!")
    with pytest.raises(InvalidCredentials) as unknown_email:
        await auth_service.login("nobody@example.org", PASSWORD)
    assert str(wrong_password.value) == str(unknown_email.value)  # no account enumeration


async def test_register_login_and_refresh_each_start_a_signed_session(
    auth_service: AuthService, settings: Settings
) -> None:
    """The access token names the user and the refresh-token family; refresh continues that family."""
    registered = await auth_service.register("ann@example.org", PASSWORD)
    logged_in = await auth_service.login("ann@example.org", PASSWORD)
    refreshed = await auth_service.refresh(logged_in.refresh_token)

    claims = [
        jwt.decode(signed.access_token, settings.jwt_secret_key, algorithms=["HS256"])
        for signed in (registered, logged_in, refreshed)
    ]
    assert {claim["sub"] for claim in claims} == {str(registered.user.id)}
    assert claims[0]["sid"] != claims[1]["sid"]  # login opens a session of its own
    assert claims[2]["sid"] == claims[1]["sid"]  # refresh keeps it
    assert refreshed.refresh_token != logged_in.refresh_token
    assert refreshed.expires_in == settings.access_token_expire_minutes * 60
    with pytest.raises(RefreshTokenInvalid):  # spent: a second use revokes the family
        await auth_service.refresh(logged_in.refresh_token)


async def test_delete_account_cascades_to_tasks_and_spares_others(
    db_session: AsyncSession,
    auth_service: AuthService,
    task_service: TaskService,
    ann_user: User,
    bob_user: User,
) -> None:
    for i in range(3):
        await task_service.create_task(ann_user.id, {"title": f"ann {i}"})
    bobs = await task_service.create_task(bob_user.id, {"title": "bob's"})

    await auth_service.delete_account(ann_user.id)

    assert await count_tasks(db_session, ann_user.id) == 0
    assert (
        await db_session.scalar(text("SELECT count(*) FROM users WHERE id = :id"), {"id": ann_user.id}) == 0
    )
    assert await count_tasks(db_session, bob_user.id) == 1
    assert (await task_service.get_task(bob_user.id, bobs.id)).title == "bob's"
    with pytest.raises(AccountGone):
        await auth_service.delete_account(ann_user.id)
    with pytest.raises(InvalidCredentials):
        await auth_service.login("ann@example.org", PASSWORD)
    with pytest.raises(AccountGone):
        await auth_service.get_account(ann_user.id)
    db_session.expunge_all()
    with pytest.raises(AccountGone):
        await auth_service.get_account(ann_user.id)


async def test_get_account_of_an_unknown_id_is_gone(auth_service: AuthService) -> None:
    for user_id in (123_456, 2**63):
        with pytest.raises(AccountGone):
            await auth_service.get_account(user_id)
