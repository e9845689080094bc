"""Why an event could not be read. Each maps onto a dead-letter reason (DESIGN §3)."""

from __future__ import annotations

__all__ = ["EventDecodeError", "InvalidJson", "SchemaViolation", "UnsupportedType"]


class EventDecodeError(ValueError):
    reason: str = "schema_violation"


class InvalidJson(EventDecodeError):
    reason = "invalid_json"


class SchemaViolation(EventDecodeError):
    reason = "schema_violation"


class UnsupportedType(EventDecodeError):
    reason = "unsupported_type"
