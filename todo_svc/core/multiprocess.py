"""Metrics shared by Granian's worker processes: prometheus-client's multiprocess directory.

prometheus-client reads the variable when it is first imported, so this module imports
nothing of it: `todo-svc serve` calls `share_across_workers` before anything else loads it.
"""

from __future__ import annotations

import os
from pathlib import Path

DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # the `prometheus_multiproc_dir` setting


def share_across_workers(directory: Path) -> None:
    """Keep the metrics in `directory` (created, or emptied of a previous run's files), in this
    process and the workers it starts."""
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.db"):
        leftover.unlink()
    os.environ[DIRECTORY_VARIABLE] = str(directory)


def shared() -> bool:
    return DIRECTORY_VARIABLE in os.environ
