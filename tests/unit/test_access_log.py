"""The access line as `configure_logging` writes it: one JSON object, its fields in order, and off
below INFO."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from todo_svc.core.logging import configure_logging

FIELDS = ["timestamp", "level", "logger", "event", "method", "route", "status", "duration_ms", "request_id"]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    configure_logging("INFO", json_lines=False)  # back to the output pytest gives the other tests


def written(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_access_line_is_one_json_object_with_the_fields_in_order(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    with path.open("w") as stream:
        access_log = configure_logging("INFO", json_lines=True, stream=stream)
        access_log.request("GET", "/api/v1/users/{user_id}/tasks", 200, 0.0125, "trace-42", 7)
        access_log.request("POST", "unmatched", 404, 0.25, "trace-43", None)

    first, second = written(path)
    assert list(first) == [*FIELDS, "user_id"]
    stamped = str(first.pop("timestamp"))
    assert stamped.endswith("Z")
    assert abs(datetime.fromisoformat(stamped) - datetime.now(UTC)) < timedelta(minutes=1)
    assert first == {
        "level": "info",
        "logger": "todo_svc.access",
        "event": "request",
        "method": "GET",
        "route": "/api/v1/users/{user_id}/tasks",
        "status": 200,
        "duration_ms": 12.5,
        "request_id": "trace-42",
        "user_id": 7,
    }
    assert (second["route"], second["status"], second["duration_ms"], second["user_id"]) == (
        "unmatched",
        404,
        250.0,
        None,
    )


@pytest.mark.parametrize(("level", "logged"), [("DEBUG", True), ("INFO", True), ("WARNING", False)])
def test_the_access_line_is_written_at_info_and_below_only(tmp_path: Path, level: str, logged: bool) -> None:
    path = tmp_path / "out.log"
    with path.open("w") as stream:
        access_log = configure_logging(level, json_lines=True, stream=stream)
        access_log.request("GET", "/health", 200, 0.001, "trace-44", None)
        structlog.get_logger().warning("disk nearly full", logger="todo_svc.test")  # the file is written to

    expected = ["request", "disk nearly full"] if logged else ["disk nearly full"]
    assert [line["event"] for line in written(path)] == expected
