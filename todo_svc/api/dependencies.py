"""Per-request wiring. The request owns the transaction: it commits once the handler has returned."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_svc.api.auth import Principal, TokenIssuer
from todo_svc.db.database import RequestDatabase, answers
from todo_svc.db.idempotency import IdempotencyRepository
from todo_svc.db.refresh_tokens import RefreshTokenRepository
from todo_svc.db.replicas import ReadRoute
from todo_svc.db.tasks import TaskRepository
from todo_svc.db.users import UserRepository
from todo_svc.services.auth import AuthService
from todo_svc.services.idempotency import IdempotencyService
from todo_svc.services.sessions import SessionService
from todo_svc.services.tasks import TaskService

Database = NamedDependency[RequestDatabase]
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})  # no handler of these writes


async def provide_database(state: State) -> AsyncGenerator[RequestDatabase, None]:
    """The request's unit of work.

    The commit runs only when the handler returned (an exception is thrown in at
    the `yield` instead) and before the response is sent: a failing COMMIT
    raises here and can never answer 2xx. Whatever did not commit is rolled
    back when the session closes.
    """
    database = RequestDatabase(state.database_engine, state.database_session_maker)
    try:
        yield database
        await database.commit()
    finally:
        await database.close()


async def provide_routed_database(
    state: State, request: Request[Any, Any, Any]
) -> AsyncGenerator[RequestDatabase, None]:
    """`provide_database` with read replicas (`DATABASE_REPLICA_URLS`): a read-only request reads
    where its user's writes are; a writing request then records where it left the primary, also
    before the response is sent, so the user's next read, on whichever instance, sees the write.
    (Without replicas the app takes `provide_database`, which does not even ask for the request.)"""
    user = request.scope.get("user")
    read_only = request.scope["method"] in READ_ONLY_METHODS
    route = ReadRoute(state.replicas, user.id if isinstance(user, Principal) else None, read_only=read_only)
    database = RequestDatabase(state.database_engine, state.database_session_maker, route)
    try:
        yield database
        await database.commit()
    finally:
        await database.close()
        await route.finish()


def provide_task_service(db: Database, state: State) -> TaskService:
    return TaskService(TaskRepository(db), state.settings.tombstone_retention)


def provide_auth_service(db: Database, state: State, tokens: NamedDependency[TokenIssuer]) -> AuthService:
    users = UserRepository(session=db.session, database=db)
    sessions = provide_session_service(db, state)
    return AuthService(users, state.password_hasher, sessions, tokens, signed_in=db.writes_for)


def provide_session_service(db: Database, state: State) -> SessionService:
    lifetime = timedelta(days=state.settings.refresh_token_expire_days)
    return SessionService(RefreshTokenRepository(session=db.session), lifetime)


def idempotency_service(db: RequestDatabase) -> IdempotencyService:
    """Built only for requests that carry an Idempotency-Key, on the request's session."""
    return IdempotencyService(IdempotencyRepository(session=db.session))


async def database_answers(engine: AsyncEngine) -> None:
    """The readiness probe's database check (the data layer's)."""
    await answers(engine)
