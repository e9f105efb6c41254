"""The cost of one access line: the msgspec writer against structlog, each writing to a real file.

    .venv/bin/python bench/access_log.py [--lines 100000] [--rounds 5] [--dir DIR]

Every way writes the same line (the keys, values and timestamp format the
service writes today, checked after the run; whether in the same key order is
in the table) for the same request, to a
file of its own in DIR (the system's temporary directory by default), one
write and one flush per line as the service does on standard output. The file
is emptied before each round; the rounds of all the ways are interleaved and
each number is the best round's, in µs per line and relative to the writer:

  writer              the service's msgspec writer (`configure_logging`'s access-line writer)
  structlog           structlog as `configure_logging` sets it up, the logger bound once
  structlog-minimal   level, ISO timestamp and msgspec's JSON renderer, BytesLogger, cached logger
  structlog-fused     one processor that stamps and encodes the line as a msgspec Struct
  structlog-fused-nolock  the same onto a logger that writes without BytesLogger's lock
  structlog-floor     structlog with one processor that returns the finished line (built once):
                      what structlog's own call costs, whatever the processors do
  write only          the finished line written and flushed: the floor every way pays
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import msgspec
import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import git_revision  # noqa: E402
from todo_svc.core.logging import ACCESS_LOGGER, AccessLine, configure_logging  # noqa: E402

Line = Callable[[str, str, int, float, str, int | None], None]  # method, route, status, seconds, id, user
REQUEST = ("GET", "/api/v1/users/{user_id}/tasks", 200, 0.001234567, "5f0c9a1b2c3d4e5f00000042", 1234)
KEYS = ["timestamp", "level", "logger", "event", "method", "route", "status", "duration_ms", "request_id"]
KEYS.append("user_id")


def writer(text: TextIO) -> Line:
    return configure_logging("INFO", json_lines=True, stream=text).request


def through(logger: Any) -> Line:
    """A structlog logger called as the access line would be."""

    def line(
        method: str, route: str, status: int, seconds: float, request_id: str, user_id: int | None
    ) -> None:
        logger.info(
            "request", method=method, route=route, status=status, duration_ms=round(seconds * 1000, 3),
            request_id=request_id, user_id=user_id,
        )  # fmt: skip

    return line


def configured(text: TextIO) -> Line:
    configure_logging("INFO", json_lines=True, stream=text)
    return through(structlog.get_logger().bind(logger=ACCESS_LOGGER))


def _json_bytes(event: MutableMapping[str, Any], **_: Any) -> bytes:
    return msgspec.json.encode(event)


def in_order(_: Any, __: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """The keys in the service's order (structlog adds the timestamp and level last)."""
    return {key: event[key] for key in KEYS}


def minimal(text: TextIO) -> Line:
    logger = structlog.wrap_logger(
        structlog.BytesLogger(text.buffer),
        processors=[
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            in_order,
            structlog.processors.JSONRenderer(serializer=_json_bytes),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(20),
        cache_logger_on_first_use=True,
    )
    return through(logger.bind(logger=ACCESS_LOGGER))


def fused_line() -> Callable[[Any, str, MutableMapping[str, Any]], bytes]:
    encoder = msgspec.json.Encoder()

    def encode(_: Any, level: str, event: MutableMapping[str, Any]) -> bytes:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return encoder.encode(AccessLine(timestamp=now, level=level, **event))

    return encode


class UnlockedBytesLogger:
    """BytesLogger's `msg` without its lock: one event loop per process writes the lines."""

    def __init__(self, out: BinaryIO) -> None:
        self._write = out.write
        self._flush = out.flush

    def msg(self, message: bytes) -> None:
        self._write(message + b"\n")
        self._flush()

    info = msg


def fused(text: TextIO, unlocked: bool = False) -> Line:
    output: Any = UnlockedBytesLogger(text.buffer) if unlocked else structlog.BytesLogger(text.buffer)
    logger = structlog.wrap_logger(
        output,
        processors=[fused_line()],
        wrapper_class=structlog.make_filtering_bound_logger(20),
        cache_logger_on_first_use=True,
    )
    return through(logger.bind(logger=ACCESS_LOGGER))


def finished_line() -> bytes:
    method, route, status, seconds, request_id, user_id = REQUEST
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    fields = (method, route, status, round(seconds * 1000, 3), request_id, user_id)
    return msgspec.json.encode(AccessLine(now, "info", ACCESS_LOGGER, "request", *fields))


def floor(text: TextIO) -> Line:
    encoded = finished_line()
    logger = structlog.wrap_logger(
        structlog.BytesLogger(text.buffer),
        processors=[lambda *_: encoded],
        wrapper_class=structlog.make_filtering_bound_logger(20),
        cache_logger_on_first_use=True,
    )
    return through(logger.bind(logger=ACCESS_LOGGER))


def write_only(text: TextIO) -> Line:
    encoded, out = finished_line() + b"\n", text.buffer

    def line(*_: Any) -> None:
        out.write(encoded)
        out.flush()

    return line


WAYS: dict[str, Callable[[TextIO], Line]] = {
    "writer": writer,
    "structlog": configured,
    "structlog-minimal": minimal,
    "structlog-fused": fused,
    "structlog-fused-nolock": lambda text: fused(text, unlocked=True),
    "structlog-floor": floor,
    "write only": write_only,
}


def timed(line: Line, text: TextIO, lines: int) -> float:
    """µs per line over `lines` lines, the file emptied first."""
    text.flush()
    text.buffer.seek(0)
    text.buffer.truncate()
    started = time.perf_counter()
    for _ in range(lines):
        line(*REQUEST)
    return (time.perf_counter() - started) / lines * 1e6


def last_line(path: Path) -> dict[str, Any]:
    with path.open("rb") as written:
        written.seek(-4096, os.SEEK_END)
        line: dict[str, Any] = json.loads(written.read().splitlines()[-1])
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="lines per round and way")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the files go")
    args = parser.parse_args()
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="todo-bench-access-") as where:
        files = {name: (Path(where) / f"{name}.log").open("w") for name in WAYS}
        try:
            ways = {name: build(files[name]) for name, build in WAYS.items()}  # each bound to its own file
            for name, write in ways.items():  # warm-up
                timed(write, files[name], 1000)
            for _ in range(args.rounds):
                for name, write in ways.items():
                    cost = timed(write, files[name], args.lines)
                    best[name] = min(cost, best.get(name, cost))
            for text in files.values():
                text.flush()
            written = {name: last_line(Path(where) / f"{name}.log") for name in WAYS}
        finally:
            for text in files.values():
                text.close()
    expected = {key: value for key, value in written["writer"].items() if key != "timestamp"}
    for name, line in written.items():
        if (
            sorted(line) != sorted(KEYS)
            or not line["timestamp"].endswith("Z")
            or any(line[key] != value for key, value in expected.items())
        ):
            print(f"{name} wrote another line: {line}", file=sys.stderr)
            return 1
    when = datetime.now(UTC).isoformat(timespec="seconds")
    print(
        f"access lines {when}  revision {git_revision()}  {args.lines} lines per round  "
        f"best of {args.rounds} rounds  file in {args.dir}  python {sys.version.split()[0]}  "
        f"structlog {structlog.__version__}  msgspec {msgspec.__version__}  load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'way':<24}{'µs/line':>9}{'x writer':>10}  keys in order")
    print("-" * 58)
    for name, cost in best.items():
        in_order = "yes" if list(written[name]) == KEYS else "no"
        print(f"{name:<24}{cost:>9.2f}{cost / best['writer']:>10.2f}  {in_order}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
