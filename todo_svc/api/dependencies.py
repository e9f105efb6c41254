"""Per-request services. The request owns the transaction: it commits once the handler has returned."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from todo_svc.db.repositories import IdempotencyRepository, TaskRepository, UserRepository
from todo_svc.services.auth import AuthService
from todo_svc.services.idempotency import IdempotencyService
from todo_svc.services.tasks import TaskService


async def commit(session: AsyncSession) -> None:
    """Commit the request's transaction, if it opened one.

    Reached only when the handler returned (an exception is thrown in at the
    `yield` instead), and before the response is sent: a failing COMMIT raises
    here and can never answer 2xx. Single statements that ran in autocommit
    (see `db/driver.py`) have committed already.
    """
    if session.in_transaction():
        await session.commit()


async def provide_task_service(
    db_session: NamedDependency[AsyncSession],
) -> AsyncGenerator[TaskService, None]:
    yield TaskService(TaskRepository(session=db_session))
    await commit(db_session)


async def provide_auth_service(
    db_session: NamedDependency[AsyncSession], state: State
) -> AsyncGenerator[AuthService, None]:
    yield AuthService(UserRepository(session=db_session), state.password_hasher)
    await commit(db_session)


def idempotency_service(session: AsyncSession) -> IdempotencyService:
    """Built only for requests that carry an Idempotency-Key, on the request's session."""
    return IdempotencyService(IdempotencyRepository(session=session))
