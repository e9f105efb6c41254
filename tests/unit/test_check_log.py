"""Readiness failures in the log: at once, then sparingly while they last, and when they end."""

from __future__ import annotations

import logging
import time

import pytest

from todo_svc.core.check_log import CheckLog


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_first_failure_at_once_then_one_line_per_period(caplog: pytest.LogCaptureFixture) -> None:
    log = CheckLog(logging.getLogger("test.readiness"), every_seconds=0.2)
    with caplog.at_level(logging.INFO, logger="test.readiness"):
        for _ in range(5):
            log.failed("database", "unavailable", "OSError")
        time.sleep(0.25)
        log.failed("database", "timeout", "no answer within 2.0 s")
        log.passed("database")
        log.passed("database")  # passing again is said once
    assert messages(caplog) == [
        "readiness check failed: database unavailable (OSError)",
        "readiness check failed: database timeout (no answer within 2.0 s), "
        "4 more failures since the last line",
        "readiness check passes again: database",
    ]


def test_checks_are_logged_apart(caplog: pytest.LogCaptureFixture) -> None:
    log = CheckLog(logging.getLogger("test.readiness"))
    with caplog.at_level(logging.INFO, logger="test.readiness"):
        log.failed("database", "unavailable", "OSError")
        log.failed("redis", "unavailable", "ConnectionError")
        log.passed("redis")
    assert messages(caplog) == [
        "readiness check failed: database unavailable (OSError)",
        "readiness check failed: redis unavailable (ConnectionError)",
        "readiness check passes again: redis",
    ]
