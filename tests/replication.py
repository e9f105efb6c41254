"""A real PostgreSQL streaming-replication pair, for tests that read from a replica.

The machine's own server is left as it is (it allows no replication connections): the pair is a
new primary made with `initdb` in a temporary folder and a replica made from it with
`pg_basebackup`, each on a free port, both run as `postgres`. Replay on the replica can be paused
(lag on demand), and the replica stopped and started again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from conftest import free_port
from sqlalchemy.engine import make_url

BIN = Path("/usr/lib/postgresql/15/bin")
SERVER_OPTIONS = "-c listen_addresses=127.0.0.1 -c max_connections=80 -c fsync=off -c full_page_writes=off"


def _as_postgres(*command: str) -> None:
    line = subprocess.list2cmdline(command)
    argv = ["su", "postgres", "-s", "/bin/sh", "-c", line] if os.geteuid() == 0 else ["/bin/sh", "-c", line]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{line} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@dataclass
class ReplicationPair:
    folder: Path
    primary_port: int
    replica_port: int

    @property
    def primary_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.primary_port}/postgres"

    @property
    def replica_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.replica_port}/postgres"

    def replica_url_for(self, primary_database_url: str) -> str:
        """The same database, read on the replica."""
        return (
            make_url(primary_database_url).set(port=self.replica_port).render_as_string(hide_password=False)
        )

    async def create_database(self, name: str) -> str:
        """A new database on the primary (and, replayed, on the replica); its primary URL."""
        await self._execute(self.primary_url, f'CREATE DATABASE "{name}"')
        return make_url(self.primary_url).set(database=name).render_as_string(hide_password=False)

    async def pause_replay(self) -> None:
        await self._execute(self.replica_url, "SELECT pg_wal_replay_pause()")

    async def resume_replay(self) -> None:
        await self._execute(self.replica_url, "SELECT pg_wal_replay_resume()")

    async def wait_until_caught_up(self) -> None:
        """Until the replica has replayed everything the primary has written so far (10 s at most)."""
        target = await self._value(self.primary_url, "SELECT pg_current_wal_lsn() - '0/0'")
        async with asyncio.timeout(10):
            while True:
                if await self._value(self.replica_url, "SELECT pg_last_wal_replay_lsn() - '0/0'") >= target:
                    return
                await asyncio.sleep(0.05)

    def stop_replica(self) -> None:
        """Stop the replica (fast: its sessions are ended); it refuses connections afterwards."""
        if self.replica_running():
            _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.folder / "replica"), "-m", "fast", "-w", "stop")

    def start_replica(self) -> None:
        if not self.replica_running():
            self._start("replica", self.replica_port)

    def replica_running(self) -> bool:
        return (self.folder / "replica" / "postmaster.pid").exists()

    def _start(self, name: str, port: int) -> None:
        options = f"-p {port} -k {self.folder} {SERVER_OPTIONS}"
        data, log = str(self.folder / name), str(self.folder / f"{name}.log")
        _as_postgres(str(BIN / "pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start")

    @staticmethod
    async def _execute(url: str, sql: str) -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    @staticmethod
    async def _value(url: str, sql: str) -> int:
        connection = await asyncpg.connect(url)
        try:
            return int(await connection.fetchval(sql))
        finally:
            await connection.close()


@contextmanager
def replication_pair() -> Iterator[ReplicationPair]:
    """A primary and its streaming replica, running until the block ends (then stopped and removed)."""
    folder = Path(tempfile.mkdtemp(prefix="todo-svc-replication-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    pair = ReplicationPair(folder, free_port(), free_port())
    primary = str(folder / "primary")
    try:
        _as_postgres(str(BIN / "initdb"), "-D", primary, "-A", "trust", "-U", "postgres")
        with (folder / "primary" / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        pair._start("primary", pair.primary_port)
        _as_postgres(
            str(BIN / "pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(pair.primary_port), "-U", "postgres"),
            *("-D", str(folder / "replica"), "-R", "-X", "stream", "-c", "fast"),
        )
        pair._start("replica", pair.replica_port)
        yield pair
    finally:
        # A server that will not stop keeps neither the other running nor the folder.
        for data in (folder / "replica", folder / "primary"):
            if (data / "postmaster.pid").exists():
                with suppress(RuntimeError, subprocess.SubprocessError):
                    _as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
