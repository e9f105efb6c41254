"""`todo-svc serve` under Granian: checks that fail in one line, the start-up report, the drain.

Granian binds every worker's socket with `SO_REUSEPORT`, so a second server on a taken port
would start and split the traffic; the port is probed without that option first. A first SIGTERM
(or SIGINT) drains the workers for `SHUTDOWN_DRAIN_SECONDS` (see `core/drain.py`) before Granian
stops them; a second one stops them at once. Granian then stops accepting, lets what is in flight
finish, and kills a worker that is not done within `SHUTDOWN_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sqlite3
import threading
from importlib.metadata import version
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from todo_svc.core.drain import DRAIN_SIGNAL
from todo_svc.settings import Settings

logger = logging.getLogger("todo_svc")

DATABASE_CHECK_SECONDS = 10.0


class StartError(Exception):
    """The server cannot start; the message says why in one line."""


def ensure_port_free(host: str, port: int) -> None:
    """Refuse a port another server listens on (even one that shares it with `SO_REUSEPORT`)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closing server's TIME_WAITs are fine
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise StartError(f"cannot listen on {host}:{port}: {reason}") from None


def database_label(settings: Settings) -> str:
    return make_url(settings.database_url).render_as_string(hide_password=True)


def ensure_database_reachable(settings: Settings) -> None:
    """One `SELECT 1`, so that a wrong or unreachable database fails the start in one line.

    It talks to the driver directly: this process only supervises the workers, and SQLAlchemy
    would stay in its memory for good (about 50 MiB).
    """
    url = make_url(settings.async_database_url)
    try:
        if url.get_backend_name() == "postgresql":
            asyncio.run(_select_one_on_postgresql(url))
        elif url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            sqlite3.connect(url.database).close()  # creates the file where it may, as the app would
    except TimeoutError:
        raise StartError(
            f"cannot reach the database {database_label(settings)}: no answer in {DATABASE_CHECK_SECONDS:g} s"
        ) from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, sqlite3.Error) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StartError(
            f"cannot reach the database {database_label(settings)}: {type(exc).__name__}: {reason}"
        ) from None


async def _select_one_on_postgresql(url: URL) -> None:
    # The URL's own options (sslmode, …) apply; the one SQLAlchemy's dialect reads would not.
    plain = url.set(drivername="postgresql").difference_update_query(["prepared_statement_cache_size"])
    dsn = plain.render_as_string(hide_password=False)
    # The simple query protocol: no prepared statement, whatever pooler is in between.
    connection = await asyncpg.connect(dsn, statement_cache_size=0, timeout=DATABASE_CHECK_SECONDS)
    try:
        await connection.execute("SELECT 1", timeout=DATABASE_CHECK_SECONDS)
    finally:
        await connection.close()


def report_start(settings: Settings) -> None:
    """The first lines: where the API and its docs are, and the configuration in force."""
    base = f"http://{f'[{settings.host}]' if ':' in settings.host else settings.host}:{settings.port}"
    logger.info("todo-svc %s: API at %s/api/v1", version("todo-svc"), base)
    if settings.docs_enabled:
        logger.info("docs at %s/docs (OpenAPI document at %s/docs/openapi.json)", base, base)
    pooler = f", pooler: {settings.database_pooler}" if settings.database_pooler != "none" else ""
    logger.info(
        "%s, %d worker(s), database %s%s, drain %g s on SIGTERM",
        settings.environment,
        settings.worker_count,
        database_label(settings),
        pooler,
        settings.drain_seconds,
    )
    logger.info("rate limits: %s", _limits(settings))
    if settings.replica_urls:
        logger.info(
            "reads of read-only requests on the replicas %s when within %g s of the primary; "
            "each user's last write position %s",
            ", ".join(_shown(url) for url in settings.replica_urls),
            settings.replica_max_lag_seconds,
            "in Redis" if settings.redis_url else "in this process",
        )


def _shown(url: str) -> str:
    """A database URL for the log: its password hidden, its driver left out."""
    parsed = make_url(url)
    return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)


def _limits(settings: Settings) -> str:
    if not settings.rate_limit_enabled:
        return "off"
    counters = "in Redis" if settings.redis_url else "in each worker's memory"
    return (
        f"auth {settings.rate_limit_auth} per client address, login {settings.rate_limit_login} "
        f"per account, tasks {settings.rate_limit_tasks} per user; counters {counters}"
    )


def drain_on_interrupt(server: Any, drain_seconds: float) -> None:
    """Put a drain between Granian's first interrupt signal and its stopping of the workers."""
    stop = server.signal_handler_interrupt
    timer: threading.Timer | None = None

    def interrupted(*args: Any) -> None:
        nonlocal timer
        if drain_seconds <= 0 or timer is not None:  # nothing to drain, or asked again: stop now
            stop(*args)
            return
        logger.info("draining for %g s, then stopping", drain_seconds)
        for worker in server.wrks:
            try:
                os.kill(worker.inner.pid, DRAIN_SIGNAL)
            except (ProcessLookupError, AttributeError):
                continue
        timer = threading.Timer(drain_seconds, stop)
        timer.daemon = True
        timer.start()

    server.signal_handler_interrupt = interrupted


def serve(settings: Settings) -> None:
    """Serve with Granian until stopped (the caller has checked the port and the database)."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    # Workers inherit this until the app listens for it: an early drain signal must not kill one.
    signal.signal(DRAIN_SIGNAL, signal.SIG_IGN)
    server = Granian(
        "todo_svc.app:create_app",
        factory=True,
        interface=Interfaces.ASGI,  # the default, RSGI, would fail every request of this ASGI app
        loop=Loops.uvloop,
        address=settings.host,
        port=settings.port,
        workers=settings.worker_count,
        workers_kill_timeout=settings.shutdown_timeout_seconds,
        log_level=settings.log_level.lower(),  # type: ignore[arg-type]
        # Granian's own records go to the root logger, and so come out in the service's format.
        log_dictconfig={"loggers": {"_granian": {"handlers": [], "propagate": True}}},
    )
    drain_on_interrupt(server, settings.drain_seconds)
    server.serve()
