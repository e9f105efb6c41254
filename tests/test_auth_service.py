"""AuthService on the real PostgreSQL test database: registration (normalised email, hashed password,
one account per email even under a race), authentication without account enumeration, and deleting an
account with its tasks.

The fixtures (`auth_service`, `task_service`, `db_session`, `ann_user`…) are in service_layer.py."""

from __future__ import annotations

import pytest
from helpers import PASSWORD
from service_layer import count_tasks
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from todo_svc.core.security import PasswordHasher
from todo_svc.db.models import User
from todo_svc.db.repositories import UserRepository
from todo_svc.services.auth import AuthService
from todo_svc.services.errors import AccountGone, EmailTaken, InvalidCredentials
from todo_svc.services.tasks import TaskService


async def test_register_normalises_the_email_and_hashes_the_password(auth_service: AuthService) -> None:
    user = await auth_service.register("  Ann.Smith@Example.ORG ", PASSWORD)

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


async def test_authenticate(auth_service: AuthService) -> None:
    user = await auth_service.register("ann@example.org", PASSWORD)

    assert (await auth_service.authenticate("ann@example.org", PASSWORD)).id == user.id
    assert (await auth_service.authenticate("  ANN@Example.org ", PASSWORD)).id == user.id

    with pytest.raises(InvalidCredentials) as wrong_password:
        await auth_service.authenticate("ann@example.org", PASSWORD + "!")
    with pytest.raises(InvalidCredentials) as unknown_email:
        await auth_service.authenticate("nobody@example.org", PASSWORD)
    assert str(wrong_password.value) == str(unknown_email.value)  # no account enumeration


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
        await auth_service.authenticate("ann@example.org", PASSWORD)
    with pytest.raises(AccountGone):
        await auth_service.get_account(ann_user.id)
    db_session.expunge_all()
    with pytest.raises(AccountGone):
        await auth_service.get_account(ann_user.id)


async def test_get_account_of_an_unknown_id_is_gone(auth_service: AuthService) -> None:
    for user_id in (123_456, 2**63):
        with pytest.raises(AccountGone):
            await auth_service.get_account(user_id)
