"""PgBouncer in transaction mode, from `deploy/pgbouncer/pgbouncer.ini`, for tests that need a pooler.

Only what differs on a test machine is overridden: where PostgreSQL is, the port, the files
PgBouncer writes, trust authentication and a small pool (so that clients really share server
connections). PgBouncer refuses to run as root: it runs as `postgres` when started by root.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from debian import debian_program
from sqlalchemy.engine import make_url

DEPLOY_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "pgbouncer" / "pgbouncer.ini"


@dataclass(frozen=True)
class PgBouncer:
    host: str
    port: int
    log: Path

    def url_for(self, database_url: str) -> str:
        """The same database, reached through this pooler."""
        return (
            make_url(database_url).set(host=self.host, port=self.port).render_as_string(hide_password=False)
        )


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["su", "postgres", "-s", "/bin/sh", "-c", subprocess.list2cmdline(command)]


@contextmanager
def running_pgbouncer(server_url: str, port: int, pool_size: int = 4) -> Iterator[PgBouncer]:
    """PgBouncer on 127.0.0.1:`port` in front of the PostgreSQL server of `server_url`."""
    pgbouncer = debian_program("pgbouncer")
    server = make_url(server_url)
    folder = Path(tempfile.mkdtemp(prefix="todo-svc-pgbouncer-"))
    folder.chmod(0o777)  # the postgres user writes its pid and log here
    config = folder / "pgbouncer.ini"
    log = folder / "pgbouncer.log"
    overrides = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "unix_socket_dir": str(folder),
        "pidfile": str(folder / "pgbouncer.pid"),
        "logfile": str(log),
        "auth_type": "trust",
        "auth_file": str(folder / "userlist.txt"),
        "default_pool_size": str(pool_size),
        "reserve_pool_size": "0",
    }
    database = f"host={server.host or '127.0.0.1'} port={server.port or 5432}"
    config.write_text(_with_overrides(DEPLOY_CONFIG.read_text(), {"*": database}, overrides))
    users = {server.username or "postgres", "pgbouncer"}  # trust still needs the names listed
    (folder / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in sorted(users)))
    for path in folder.iterdir():
        path.chmod(0o666)
    process = subprocess.Popen(  # noqa: S603 - a fixed command
        _as_postgres([pgbouncer, str(config)]), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        _wait_until_listening(process, "127.0.0.1", port, log)
        yield PgBouncer("127.0.0.1", port, log)
    finally:
        pid_file = folder / "pgbouncer.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGINT)  # SIGINT: close at once
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def _with_overrides(ini: str, databases: dict[str, str], settings: dict[str, str]) -> str:
    """The deploy configuration with the `[databases]` entries and some `[pgbouncer]` keys replaced."""
    lines, section, pending = [], "", dict(settings)
    for line in ini.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
            lines.append(line)
            if section == "[databases]":
                lines.extend(f"{name} = {value}" for name, value in databases.items())
            continue
        key = stripped.partition("=")[0].strip()
        if section == "[databases]" and key and not stripped.startswith(";"):
            continue
        if section == "[pgbouncer]" and key in pending:
            line = f"{key} = {pending.pop(key)}"
        lines.append(line)
    lines.extend(f"{key} = {value}" for key, value in pending.items())  # [pgbouncer] is the last section
    return "\n".join(lines) + "\n"


def _wait_until_listening(process: subprocess.Popen[bytes], host: str, port: int, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited:\n{log.read_text() if log.exists() else ''}")
        try:
            asyncio.run(_ping(host, port))
            return
        except (OSError, asyncpg.PostgresError):
            time.sleep(0.1)
    raise TimeoutError(f"pgbouncer did not listen on {host}:{port}")


async def _ping(host: str, port: int) -> None:
    connection = await asyncpg.connect(
        host=host, port=port, user="postgres", database="postgres", statement_cache_size=0
    )
    await connection.close()
