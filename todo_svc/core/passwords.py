"""Password hashing: bcrypt off the event loop, below its CPU priority."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bcrypt


def _prehash(password: str) -> bytes:
    """SHA-256 first, so that bcrypt's 72-byte limit never truncates a password.

    Two passwords that differ only after their 72nd byte stay different; the
    base64 digest is 44 ASCII bytes without NUL, which bcrypt accepts.
    """
    return base64.b64encode(hashlib.sha256(password.encode()).digest())


# Linux nice value of the hashing threads: a thread at 5 weighs a third of one at 0.
HASHING_NICENESS = 5


def _yield_to_requests() -> None:
    """Run this hashing thread below the event loop's CPU priority.

    bcrypt releases the GIL, so its threads compete with the event loop for the
    core, not for the interpreter: at equal priority two of them take two thirds
    of a saturated core from every other request. At nice 5 they still get
    enough to keep logins moving (at nice 19 they starve into timeouts). On
    Linux a thread's nice value is its own; elsewhere this is a no-op.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


class PasswordHasher:
    """bcrypt off the event loop, in a bounded pool.

    bcrypt releases the GIL, so a small pool uses every core; the semaphore keeps
    a login flood from queueing unbounded work behind it.
    """

    def __init__(self, rounds: int, workers: int) -> None:
        self._rounds = rounds
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="bcrypt", initializer=_yield_to_requests
        )
        self._slots = asyncio.Semaphore(workers * 8)
        self._dummy_hash: bytes | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def hash(self, password: str) -> str:
        hashed: bytes = await self._run(
            lambda: bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=self._rounds))
        )
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check a password; with no hash (unknown account) spend the same time and fail."""
        if password_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = (await self.hash("dummy password for unknown accounts")).encode()
            await self._run(bcrypt.checkpw, _prehash(password), self._dummy_hash)
            return False
        matches: bool = await self._run(bcrypt.checkpw, _prehash(password), password_hash.encode())
        return matches

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
