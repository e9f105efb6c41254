"""Log lines for a health check that fails, few enough for a probe every second."""

from __future__ import annotations

import logging
import time


class CheckLog:
    """Logs a check that starts failing at once, then at most every `every_seconds` while it keeps
    failing (with how many failures the silence hid), and once when it passes again."""

    def __init__(self, logger: logging.Logger, every_seconds: float = 30.0) -> None:
        self._logger = logger
        self._every = every_seconds
        self._failing: dict[str, tuple[float, int]] = {}  # check -> (when it was last logged, failures since)

    def failed(self, check: str, state: str, reason: str) -> None:
        now = time.monotonic()
        logged_at, unlogged = self._failing.get(check, (float("-inf"), 0))
        if now - logged_at < self._every:
            self._failing[check] = (logged_at, unlogged + 1)
            return
        self._failing[check] = (now, 0)
        self._logger.warning(
            "readiness check failed: %s %s (%s)%s",
            check,
            state,
            reason,
            f", {unlogged} more failures since the last line" if unlogged else "",
        )

    def passed(self, check: str) -> None:
        if self._failing.pop(check, None) is not None:
            self._logger.info("readiness check passes again: %s", check)
