"""Draining: an instance that is about to stop first leaves its gateway's rotation.

`todo-svc serve` turns the first SIGTERM into `DRAIN_SIGNAL` for every worker, waits
`SHUTDOWN_DRAIN_SECONDS`, and only then lets Granian stop them (see `todo_svc/server.py`). While a
worker drains it still serves, but readiness answers 503 and every response carries
`Connection: close`, so gateways stop choosing it and move their keep-alive connections to other
instances before the listening socket closes.
"""

from __future__ import annotations

import asyncio
import logging
import signal

logger = logging.getLogger(__name__)

DRAIN_SIGNAL = signal.SIGUSR1
CONNECTION_CLOSE = (b"connection", b"close")


class Drain:
    """Whether this worker is draining; it starts once and never ends."""

    __slots__ = ("draining",)

    def __init__(self) -> None:
        self.draining = False

    def begin(self) -> None:
        if not self.draining:
            self.draining = True
            logger.info("draining: readiness answers 503 and connections close after each answer")

    def listen(self) -> None:
        """Begin on `DRAIN_SIGNAL`. Only a process's main thread can take signals: an app served
        from another thread (a test client) drains only when told to with `begin()`."""
        try:
            asyncio.get_running_loop().add_signal_handler(DRAIN_SIGNAL, self.begin)
        except (RuntimeError, ValueError):
            return
