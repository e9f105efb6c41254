"""Logs: one JSON object per line in production, readable lines in development, one shape for all.

The service's own events go through structlog; records of the libraries (Granian,
SQLAlchemy, Alembic…) go through the standard `logging` module and are rendered
by the same processors, so a log shipper sees one format. Keys that could carry a
secret or personal data are masked whoever logs them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, Processor

MASKED = "[masked]"
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "authorization",
        "token",
        "access_token",
        "refresh_token",
        "email",
        "jwt_secret_key",
        "secret",
    }
)


def mask_sensitive(_: Any, __: str, event: MutableMapping[str, Any]) -> EventDict:
    """Defence in depth: a secret passed by mistake is masked, never written."""
    for key in SENSITIVE_KEYS.intersection(event):
        event[key] = MASKED
    return event


def _json_bytes(event: MutableMapping[str, Any], **_: Any) -> bytes:
    return msgspec.json.encode(event, enc_hook=str)


def _json_text(event: MutableMapping[str, Any], **_: Any) -> str:
    return _json_bytes(event).decode()


def configure_logging(level: str, json_lines: bool, stream: TextIO | None = None) -> None:
    """Set up structlog and the `logging` root for this process (each Granian worker calls it).

    The service's events name their logger (`logger="todo_svc.access"`); library records carry
    their `logging` name.
    """
    stream = stream or sys.stdout
    numeric_level = logging.getLevelName(level.upper())
    context: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    finish: list[Processor] = [mask_sensitive]
    renderer: Processor = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    text_renderer = renderer
    logger_factory: Any = structlog.WriteLoggerFactory(stream)
    if json_lines:
        finish.append(structlog.processors.format_exc_info)  # the trace as one string field
        text_renderer = renderer = structlog.processors.JSONRenderer(serializer=_json_text)
        if hasattr(stream, "buffer"):  # straight to the bytes: no text layer in between
            renderer = structlog.processors.JSONRenderer(serializer=_json_bytes)
            logger_factory = structlog.BytesLoggerFactory(stream.buffer)
    structlog.configure(
        processors=[*context, *finish, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,  # hot paths bind their logger once instead
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *context,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                *finish,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, text_renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    for noisy in ("alembic.runtime.plugins", "httpx"):
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.WARNING))
