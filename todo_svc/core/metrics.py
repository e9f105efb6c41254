"""Prometheus metrics, right across Granian's worker processes.

`todo-svc serve` points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before
the workers start: prometheus-client then keeps each worker's values in files
there and one scrape of `/metrics`, whichever worker answers it, adds them all
up. Without it (tests, a single process) the values live in memory.

Labels are bounded: the route is the template (`/api/v1/users/{user_id}/tasks`),
never the path, and an unknown method counts as `OTHER`.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from todo_svc.core import multiprocess as workers

CONTENT_TYPE = CONTENT_TYPE_LATEST
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "todo_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "todo_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by method and route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge("todo_http_requests_in_flight", "Requests being answered now", multiprocess_mode="livesum")
POOL_SIZE = Gauge("todo_db_pool_size", "Database connections the pools may hold", multiprocess_mode="livesum")
POOL_IN_USE = Gauge(
    "todo_db_pool_connections_in_use",
    "Database connections lent out by the pools",
    multiprocess_mode="livesum",
)
DATABASE_READS = Counter(
    "todo_db_reads",
    "Read-only requests' database reads, by where they ran (primary, replica)",
    ["target"],
)
REPLICA_LAG = Gauge(
    "todo_db_replica_lag_seconds",
    "How far each replica's replay is behind the primary, as last checked",
    ["replica"],
    multiprocess_mode="livemax",
)
REPLICA_SKIPS = Counter(
    "todo_db_replica_skips",
    "Reads that passed a replica over, by replica and reason (unavailable, lagging, behind_write, failed)",
    ["replica", "reason"],
)
LOGINS = Counter("todo_logins", "Login attempts, by outcome (success, failure)", ["outcome"])
RATE_LIMITED = Counter("todo_rate_limit_rejections", "Requests refused with 429, by route family", ["family"])


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "OTHER"


def exposition() -> bytes:
    """Prometheus text (`CONTENT_TYPE`) of every worker's values."""
    registry = REGISTRY
    if workers.shared():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def worker_stopped() -> None:
    """Drop this process's live gauges from the sums (its counters stay: they happened)."""
    if workers.shared():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
