"""Read replicas: which one may answer a read, and the position a user's reads must see.

Every half second each worker reads the primary's WAL position and each replica's replay
position. A replica's lag is how long ago the primary last stood where the replica now is: a
replica that has replayed everything has no lag, however quiet the primary. A replica that does
not answer, is no longer in recovery, or lags past `REPLICA_MAX_LAG_SECONDS` is passed over until a
later check finds it well.

Read-your-writes: once a user's write has committed, the primary's position is recorded for the
user (`write_positions`); that user's reads go only to a replica whose replay position, as last
seen, is at or past it (a position only grows, so a stale reading can only be too careful), else
to the primary. The replica chosen is the one checked: there is no "some replica has caught up,
so any will do".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from itertools import count
from typing import Any, Literal

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_svc.core import metrics
from todo_svc.db.database import borrowed
from todo_svc.db.write_positions import WritePositions

logger = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 0.5
CHECK_TIMEOUT_SECONDS = 1.0
# Positions as byte offsets: what `pg_lsn` values subtract to. A write's position is where the
# primary inserts next, past its commit record however the commit was flushed; the checks read
# where the primary has written to, which a replica that has everything has replayed to exactly.
WRITE_POSITION = "SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint"
WRITTEN_POSITION = "SELECT (pg_current_wal_lsn() - '0/0')::bigint"
REPLAY_POSITION = "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0')::bigint"

Health = Literal["ok", "lagging", "unavailable"]


@dataclass(eq=False)
class Replica:
    """One replica endpoint (directly, or a PgBouncer in front of it) and what its last check found."""

    engine: AsyncEngine
    health: Health = "unavailable"
    replayed: int = -1
    lag_seconds: float = float("inf")
    name: str = field(init=False)  # `host:port`, for labels and readiness (a URL may hold a password)

    def __post_init__(self) -> None:
        url = make_url(str(self.engine.url))
        self.name = f"{url.host}:{url.port or 5432}"

    def skipped(self, reason: str) -> None:
        metrics.REPLICA_SKIPS.labels(self.name, reason).inc()


class ReplicaSet:
    """The replicas of one primary, kept checked while `watching()`."""

    def __init__(
        self,
        primary: AsyncEngine,
        replicas: list[AsyncEngine],
        max_lag_seconds: float,
        positions: WritePositions,
    ) -> None:
        self.primary = primary
        self.replicas = [Replica(engine) for engine in replicas]
        self.positions = positions
        self._max_lag = max_lag_seconds
        self._history: deque[tuple[float, int]] = deque()  # (when, primary position), oldest first
        self._turns = count()

    def choose(self, must_have: int | None) -> Replica | None:
        """A healthy replica that has replayed `must_have` (taking turns among them), else None."""
        replicas = self.replicas
        start = next(self._turns)
        for offset in range(len(replicas)):
            replica = replicas[(start + offset) % len(replicas)]
            if replica.health != "ok":
                replica.skipped(replica.health)
            elif must_have is not None and replica.replayed < must_have:
                replica.skipped("behind_write")
            else:
                return replica
        return None

    def failed(self, replica: Replica) -> None:
        """A read on the replica failed: pass it over until a check finds it well again."""
        replica.health = "unavailable"
        replica.skipped("failed")

    async def position_now(self) -> int:
        """The primary's WAL position now: past every transaction committed so far."""
        return await self._primary_position(WRITE_POSITION)

    async def _primary_position(self, query: str) -> int:
        async with borrowed(self.primary) as connection:
            return int(await connection.fetchval(query))

    def report(self) -> dict[str, str]:
        """Each replica's health, for the readiness probe."""
        return {f"replica:{replica.name}": replica.health for replica in self.replicas}

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Check the replicas now and every half second until the block ends; then close their pools."""
        await self.check()
        watcher = asyncio.create_task(self._watch())
        try:
            yield
        finally:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
            for replica in self.replicas:
                await replica.engine.dispose()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY_SECONDS)
            await self.check()

    async def check(self) -> None:
        """Read the primary's position, then every replica's; update each replica's health."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                self._history.append((time.monotonic(), await self._primary_position(WRITTEN_POSITION)))
        except Exception as error:  # the primary's own faults answer the requests
            logger.debug("replica check: the primary's position is unknown (%s)", type(error).__name__)
        self._forget_before(time.monotonic() - self._max_lag - 2 * CHECK_TIMEOUT_SECONDS)
        await asyncio.gather(*(self._check(replica) for replica in self.replicas))

    async def _check(self, replica: Replica) -> None:
        try:
            async with (
                asyncio.timeout(CHECK_TIMEOUT_SECONDS),
                borrowed(replica.engine, discard_on_error=True) as connection,
            ):
                in_recovery, replayed = await connection.fetchrow(REPLAY_POSITION)
        except Exception as error:  # any failure: not to be read from now
            if replica.health != "unavailable":
                logger.warning("replica %s is unavailable (%s)", replica.name, type(error).__name__)
            replica.health, replica.lag_seconds = "unavailable", float("inf")
            metrics.REPLICA_LAG.labels(replica.name).set(float("inf"))
            return
        if not in_recovery or replayed is None:  # promoted: it no longer follows this primary
            replica.health = "unavailable"
            return
        replica.replayed = int(replayed)
        replica.lag_seconds = self._lag(replica.replayed)
        metrics.REPLICA_LAG.labels(replica.name).set(replica.lag_seconds)
        health: Health = "ok" if replica.lag_seconds <= self._max_lag else "lagging"
        if health != replica.health:
            logger.info("replica %s is %s (lag %.1f s)", replica.name, health, replica.lag_seconds)
        replica.health = health

    def _lag(self, replayed: int) -> float:
        """Seconds since the primary last stood at or before `replayed`; unknown (infinite) when
        the replica is behind every position remembered."""
        behind = [when for when, position in self._history if position <= replayed]
        return time.monotonic() - behind[-1] if behind else float("inf")

    def _forget_before(self, moment: float) -> None:
        # Keep one reading older than the window: it still says where the primary was then.
        while len(self._history) > 1 and self._history[1][0] < moment:
            self._history.popleft()


_UNCHOSEN: Any = object()


class ReadRoute:
    """Where one request's statements go. A read-only request (GET, HEAD) reads from one replica,
    chosen at its first statement for all of them, that has the user's last write, else from the
    primary; any other request goes to the primary, and its user's reads afterwards wait for the
    position it leaves the primary at (`finish`)."""

    __slots__ = ("_chosen", "_replicas", "read_only", "user_id")

    def __init__(self, replicas: ReplicaSet, user_id: int | None, *, read_only: bool) -> None:
        self._replicas = replicas
        self.user_id = user_id  # whose writes these are, or whose reads must see their writes
        self.read_only = read_only
        self._chosen: Replica | None = _UNCHOSEN

    async def replica(self) -> Replica | None:
        """The replica to read from; None: the primary."""
        if self._chosen is _UNCHOSEN:
            self._chosen = await self._choose() if self.read_only else None
        return self._chosen

    async def _choose(self) -> Replica | None:
        try:
            user_id = self.user_id
            must_have = await self._replicas.positions.last(user_id) if user_id is not None else None
        except Exception as error:  # the user's position unknown: only the primary is safe
            logger.warning("read on the primary: the user's last write is unknown (%s)", type(error).__name__)
            replica = None
        else:
            replica = self._replicas.choose(must_have)
        (READ_ON_REPLICA if replica is not None else READ_ON_PRIMARY).inc()
        return replica

    def failed(self, replica: Replica, error: BaseException) -> None:
        """The replica failed a read: the request goes on on the primary."""
        logger.warning("replica %s failed a read (%s): on to the primary", replica.name, type(error).__name__)
        self._replicas.failed(replica)
        self._chosen = None
        READ_ON_PRIMARY.inc()

    async def finish(self) -> None:
        """After a writing request: record where the primary stands for the user's later reads."""
        if self.read_only or self.user_id is None:
            return
        try:
            await self._replicas.positions.record(self.user_id, await self._replicas.position_now())
        except Exception as error:  # the write itself has committed; say what is at risk
            logger.warning(
                "the position of a write is not recorded (%s): its user's next reads may miss it",
                type(error).__name__,
            )


READ_ON_PRIMARY = metrics.DATABASE_READS.labels("primary")
READ_ON_REPLICA = metrics.DATABASE_READS.labels("replica")
