"""Test fixtures: a fresh database per run, built by the real migrations, emptied after each test.

Every test that uses the database runs twice: on PostgreSQL directly (`postgresql`) and through
PgBouncer in transaction mode (`pgbouncer`, the app configured with DATABASE_POOLER=transaction);
tests marked `@pytest.mark.backends("postgresql", "sqlite")` run once per backend named. The
server comes from `TEST_POSTGRES_URL` (default: the local one);
the run creates its own database there and drops it at the end, and the cleanup refuses to
touch any database this run did not create.

Beside it: helpers.py (the contract's assertions, tasks and accounts over HTTP), service_layer.py
(the service layer's fixtures, loaded here), servers.py (the real server in a child process).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import bcrypt
import httpx
import pytest
from advanced_alchemy.alembic.commands import AlembicCommands
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pgbouncer import PgBouncer, running_pgbouncer
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from todo_svc.app import create_app
from todo_svc.core.passwords import PasswordHasher
from todo_svc.db.config import database_config
from todo_svc.settings import Settings

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_DATABASE_PREFIX = "todo_svc_test_"
SECRET = "test-secret-key-that-is-long-enough-for-hs256"
CREATED_DATABASES: set[str] = set()
DEFAULT_BACKENDS = ("postgresql", "pgbouncer")
POOLED_URLS: dict[str, str] = {}  # a URL through the test PgBouncer -> the same database reached directly

pytest_plugins = ["service_layer"]  # the service layer's own fixtures, without HTTP


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    backends = marker.args if marker else DEFAULT_BACKENDS
    metafunc.parametrize("backend", backends, indirect=True, scope="session")


def pooler_of(database_url: str) -> str:
    """The DATABASE_POOLER a URL needs: `transaction` through the test PgBouncer."""
    return "transaction" if database_url in POOLED_URLS else "none"


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "database_pooler": pooler_of(database_url),
        "jwt_secret_key": SECRET,
        "bcrypt_rounds": 4,
        # Limits on, so every request goes through the limiter, but out of the way of the suite's
        # many registrations from one address; tests of the limits set their own.
        "rate_limit_auth": "100000/minute",
        "rate_limit_login": "100000/minute",
        "rate_limit_tasks": "100000/minute",
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def migrate(database_url: str, revision: str = "head", *, down: bool = False) -> None:
    """Run the real migrations (Alembic runs its own event loop, hence the thread)."""
    commands = AlembicCommands(sqlalchemy_config=database_config(make_settings(database_url)))
    await asyncio.to_thread(commands.downgrade if down else commands.upgrade, revision)


async def create_postgres_database() -> str:
    name = f"{RUN_DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    CREATED_DATABASES.add(name)
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    assert name in CREATED_DATABASES, f"refusing to drop {name}: this test run did not create it"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    CREATED_DATABASES.discard(name)


@pytest.fixture(scope="session")
async def postgresql_url() -> AsyncIterator[str]:
    url = await create_postgres_database()
    await migrate(url)
    yield url
    await drop_postgres_database(url)


@pytest.fixture(scope="session")
def pgbouncer() -> Iterator[PgBouncer]:
    with running_pgbouncer(ADMIN_URL, free_port()) as pooler:
        yield pooler


@pytest.fixture(scope="session")
def pgbouncer_url(postgresql_url: str, pgbouncer: PgBouncer) -> str:
    """The run's PostgreSQL database, reached through PgBouncer in transaction mode."""
    url = pgbouncer.url_for(postgresql_url)
    POOLED_URLS[url] = postgresql_url
    return url


@pytest.fixture(scope="session")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'todo.db'}"
    await migrate(url)
    return url


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "postgresql"))


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, backend: str) -> str:
    return str(request.getfixturevalue(f"{backend}_url"))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture(scope="session")
async def session_client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A direct connection to the test database, beside the app's own pool (and its pooler)."""
    direct = make_settings(POOLED_URLS.get(settings.database_url, settings.database_url))
    test_engine = create_async_engine(direct.async_database_url, poolclass=NullPool)
    yield test_engine
    await test_engine.dispose()


def assert_created_by_this_run(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return
    assert parsed.database in CREATED_DATABASES, (
        f"refusing to touch {parsed.database}: not created by this run"
    )


async def empty_tables(engine: AsyncEngine) -> None:
    assert_created_by_this_run(str(engine.url))
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(
                text("TRUNCATE users, tasks, idempotency_records, refresh_tokens RESTART IDENTITY CASCADE")
            )
        else:
            for table in ("refresh_tokens", "idempotency_records", "tasks", "users"):
                await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names


@pytest.fixture
async def client(
    session_client: AsyncTestClient[Litestar],
    engine: AsyncEngine,
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The API, with empty tables after each test."""
    yield session_client
    await empty_tables(engine)


async def concurrently(
    client: AsyncTestClient[Litestar], make_requests: Callable[[httpx.AsyncClient], Awaitable[Any]]
) -> Any:
    """Run requests truly concurrently.

    The test client sends one request at a time (a blocking call into the app's
    own event loop), so `asyncio.gather` on it overlaps nothing; this runs
    `make_requests` inside that loop with a plain ASGI client instead.
    """

    async def run() -> Any:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as concurrent:
            return await make_requests(concurrent)

    return await asyncio.to_thread(client.blocking_portal.call, run)


@dataclass
class Account:
    id: int
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def tasks_url(self) -> str:
        return f"/api/v1/users/{self.id}/tasks"


RegisterFn = Callable[..., Awaitable[Account]]


@pytest.fixture
def register(client: AsyncTestClient[Litestar]) -> RegisterFn:
    """Register an account through the API and return it with its token."""

    async def _register(email: str | None = None, password: str = "correct horse battery") -> Account:  # noqa: S107
        email = email or f"user-{uuid.uuid4().hex[:8]}@example.org"
        response = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert response.status_code == 201, response.text
        body = response.json()
        return Account(
            id=body["user"]["id"], email=body["user"]["email"], password=password, token=body["access_token"]
        )

    return _register


@pytest.fixture
async def ann(register: RegisterFn) -> Account:
    return await register("ann@example.org")


@pytest.fixture
async def bob(register: RegisterFn) -> Account:
    return await register("bob@example.org")


@pytest.fixture
async def hasher() -> AsyncIterator[PasswordHasher]:
    """Password hashing at the suite's cost (4 rounds), with its threads stopped afterwards."""
    password_hasher = PasswordHasher(rounds=4, workers=2)
    yield password_hasher
    password_hasher.close()


@pytest.fixture
def bcrypt_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The hashes `bcrypt.checkpw` is asked to check, in order (it still checks them)."""
    checked: list[bytes] = []
    real_checkpw = bcrypt.checkpw

    def spy(password: bytes, hashed_password: bytes) -> bool:
        checked.append(hashed_password)
        return real_checkpw(password, hashed_password)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    return checked


def run_cli(*args: str, database_url: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `todo-svc ARGS` in a child process, configured by the environment only."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database_url,
        "DATABASE_POOLER": pooler_of(database_url),
        "ENVIRONMENT": "development",
        "JWT_SECRET_KEY": "cli-test-secret-that-is-long-enough-for-hs256",
        **env,
    }
    return subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-m", "todo_svc.cli", *args],
        env=environment,
        cwd=cwd,  # no .env of the checkout is read
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def no_env_file(tmp_path: Path) -> Path:
    """A `.env` path that does not exist, for `load_settings(env_file=...)`."""
    return tmp_path / "absent.env"
