"""Failures have names: transient ones are retried, permanent ones go to the dead-letter topic.

``Reason`` is the closed vocabulary of dead-letter reasons (DESIGN §3); keep it in step with the docs.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["PermanentError", "RastroError", "Reason", "TransientError"]


class Reason(StrEnum):
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    UNSUPPORTED_TYPE = "unsupported_type"
    UNKNOWN_TENANT = "unknown_tenant"
    UNMAPPED_CARRIER_CODE = "unmapped_carrier_code"
    UNKNOWN_CARRIER = "unknown_carrier"
    HANDLER_ERROR = "handler_error"
    RETRIES_EXHAUSTED = "retries_exhausted"


class RastroError(Exception):
    """Base of every error Rastro raises on purpose."""


class TransientError(RastroError):
    """Might succeed later (a dependency is down or slow): retry through the retry tiers."""


class PermanentError(RastroError):
    """Will never succeed as it is: dead-letter it with a reason."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
