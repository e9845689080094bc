"""Structured JSON logs (structlog) with service, event id, subject, tenant and trace id."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from rastro_events.personal import redact

__all__ = ["bind_event", "configure_logging", "get_logger", "redact_personal_data", "unbind_event"]


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stdout for structlog and for the standard library (uvicorn, aiokafka) alike."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Personal data never reaches a log line: personal fields masked, e-mails and documents in text too.
    redacting: list[Any] = [structlog.processors.format_exc_info, redact_personal_data]
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *redacting,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                _drop_color_message,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx/httpcore log full URLs at INFO, and a webhook URL can carry a token.
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, *redacting, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def redact_personal_data(_: Any, __: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """structlog processor: ``rastro_events.personal.redact`` over the whole event (exception text too)."""
    return {k: redact(v) if k not in _PLAIN else v for k, v in event.items()}


_PLAIN = frozenset({"timestamp", "level", "service", "event_id", "subject", "tenant", "trace_id", "logger"})


def _drop_color_message(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """uvicorn repeats each message with terminal colour codes for its own console; not for JSON."""
    event.pop("color_message", None)
    return event


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]


def bind_event(event_id: str | None, subject: str | None, tenant: str | None, trace_id: str | None) -> None:
    structlog.contextvars.bind_contextvars(
        event_id=event_id, subject=subject, tenant=tenant, trace_id=trace_id
    )


def unbind_event() -> None:
    structlog.contextvars.unbind_contextvars("event_id", "subject", "tenant", "trace_id")
