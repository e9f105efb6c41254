"""The `todo-svc` command: serve the API and manage its database."""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec

from todo_svc.core import multiprocess
from todo_svc.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _migrations(settings: Settings) -> object:
    from advanced_alchemy.alembic.commands import AlembicCommands

    from todo_svc.db.config import database_config

    return AlembicCommands(sqlalchemy_config=database_config(settings))


# PostgreSQL's default max_connections (100) minus headroom for migrations, admin and probes.
CONNECTION_BUDGET = 90


@click.group()
@click.version_option(package_name="todo-svc", message="%(package)s %(version)s")
def main() -> None:
    """todo-svc: a Todo REST API."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


@main.command()
@click.option("--host", help="address to listen on  [env: HOST; default 127.0.0.1]")
@click.option("--port", type=click.IntRange(0, 65535), help="port  [env: PORT; default 8000]")
@click.option(
    "--workers", type=click.IntRange(min=1), help="Granian worker processes  [env: WORKERS; default per core]"
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API with Granian; outside production, migrate first."""
    from todo_svc.core.logging import configure_logging
    from todo_svc.server import StartError, ensure_database_reachable, ensure_port_free, report_start
    from todo_svc.server import serve as serve_with_granian

    settings = _settings()  # exports a generated dev secret, so every worker shares it
    given = {"host": host, "port": port, "workers": workers}
    settings = msgspec.structs.replace(settings, **{k: v for k, v in given.items() if v is not None})
    # One scrape must see every worker: each keeps its metrics in files there. Set before
    # anything imports prometheus-client, which picks its storage at import (workers are forked).
    given_dir = settings.prometheus_multiproc_dir
    metrics_dir = Path(given_dir or tempfile.mkdtemp(prefix="todo-svc-metrics-"))
    multiprocess.share_across_workers(metrics_dir)
    configure_logging(settings.log_level, settings.log_json)
    try:
        ensure_port_free(settings.host, settings.port)
        ensure_database_reachable(settings)
        report_start(settings)
        _warn_about_connections(settings)
        if not settings.is_production:
            _migrations(settings).upgrade("head")  # type: ignore[attr-defined]
        serve_with_granian(settings)
    except StartError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if not given_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _warn_about_connections(settings: Settings) -> None:
    connections = settings.worker_count * settings.database_pool_size
    if connections > CONNECTION_BUDGET and not settings.async_database_url.startswith("sqlite"):
        logging.getLogger("todo_svc").warning(
            "WORKERS x DATABASE_POOL_SIZE = %d connections: more than PostgreSQL's default "
            "max_connections (100) leaves for other clients; lower one of them or raise max_connections",
            connections,
        )


@main.command()
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="write it here, not to stdout"
)
def openapi(output: Path | None) -> None:
    """Print the OpenAPI document the service serves (docs/openapi.json is this, committed)."""
    import json

    from todo_svc.api.openapi import contract_document
    from todo_svc.app import create_app

    app = create_app(msgspec.structs.replace(_settings(), docs_enabled=True))
    document = json.dumps(contract_document(app), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if output is None:
        click.echo(document, nl=False)
    else:
        output.write_text(document, encoding="utf-8")


@main.group()
def db() -> None:
    """Database migrations (the only entry point to them)."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    _migrations(_settings()).upgrade(revision)  # type: ignore[attr-defined]


@db.command()
@click.argument("revision", default="-1")
def downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (default: one step)."""
    _migrations(_settings()).downgrade(revision)  # type: ignore[attr-defined]


@db.command()
def current() -> None:
    """Show the revision the database is at."""
    _migrations(_settings()).current(verbose=False)  # type: ignore[attr-defined]


@db.command()
@click.option("-m", "--message", required=True)
def revision(message: str) -> None:
    """Create a migration from the difference between the models and the database."""
    _migrations(_settings()).revision(message=message, autogenerate=True)  # type: ignore[attr-defined]


@main.command()
@click.option("--users", type=click.IntRange(min=1), default=10, show_default=True, help="accounts")
@click.option("--tasks", type=click.IntRange(min=0), default=20, show_default=True, help="tasks per account")
@click.option("--password", default="seed-password", show_default=True, help="every seeded account's")
@click.option("--prefix", default="seed", show_default=True, help="accounts are <prefix>-<n>@example.org")
def seed(users: int, tasks: int, password: str, prefix: str) -> None:
    """Fill the database with development data, in bulk (a second run adds only what is missing)."""
    import asyncio

    from todo_svc.core.passwords import PasswordHasher
    from todo_svc.db.config import database_config
    from todo_svc.db.seed import SeedResult, seed_email
    from todo_svc.db.seed import seed as seed_database

    settings = _settings()
    if settings.is_production:
        raise click.ClickException("refusing to seed a production database (ENVIRONMENT=production)")

    async def run() -> SeedResult:
        hasher = PasswordHasher(rounds=settings.bcrypt_rounds, workers=1)
        engine = database_config(settings).get_engine()
        try:
            password_hash = await hasher.hash(password)  # one hash: every account shares the password
            return await seed_database(
                engine, users=users, tasks_per_user=tasks, password_hash=password_hash, prefix=prefix
            )
        finally:
            hasher.close()
            await engine.dispose()

    result = asyncio.run(run())
    click.echo(
        f"created {result.users_created} accounts ({result.users_existing} already there) "
        f"and {result.tasks_created} tasks; log in as {seed_email(prefix, 1)} … "
        f"{seed_email(prefix, users)} with password {password!r}"
    )


@main.group()
def tokens() -> None:
    """Refresh-token housekeeping."""


@tokens.command()
def prune() -> None:
    """Delete refresh tokens that have expired (safe to run from cron at any time)."""
    from todo_svc.db.refresh_tokens import RefreshTokenRepository

    deleted = _committed(lambda session, now, _: RefreshTokenRepository(session=session).delete_expired(now))
    click.echo(f"deleted {deleted} expired refresh tokens")


@main.group()
def changes() -> None:
    """Changes-feed housekeeping."""


@changes.command("prune")
def prune_changes() -> None:
    """Delete the tombstones of tasks deleted longer ago than TASK_TOMBSTONE_RETENTION_DAYS (safe
    to run from cron at any time: a `since` token that still needs them is still answered)."""
    from todo_svc.db.tombstones import prune_tombstones

    deleted = _committed(
        lambda session, now, settings: prune_tombstones(session, now, settings.tombstone_retention)
    )
    click.echo(f"deleted {deleted} tombstones of deleted tasks")


def _committed(work: Callable[[AsyncSession, datetime, Settings], Awaitable[int]]) -> int:
    """Run one housekeeping statement in its own session and commit it; what it returned."""
    import asyncio

    from todo_svc.db.config import database_config

    settings = _settings()

    async def run() -> int:
        config = database_config(settings)
        try:
            async with config.create_session_maker()() as session:
                result = await work(session, datetime.now(UTC), settings)
                await session.commit()
                return result
        finally:
            await config.get_engine().dispose()

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
