"""What one delivery attempt's result means for the message and the endpoint (DESIGN §7).

=====================  ==========================================================================
outcome                when
=====================  ==========================================================================
``delivered``          2xx
``retry``              no response (timeout, connection, DNS or protocol error), 408, 409, 425, 429,
                       5xx — try again on the retry schedule, honouring ``Retry-After``
``endpoint_gone``      410 — disable the endpoint at once
``failed_permanently`` any other status: other 4xx; 3xx (redirects are never followed: the subscriber
                       must register the final URL, and following one would step around the endpoint
                       policy); 1xx and non-standard codes; and an endpoint the policy refused at
                       send time (e.g. its name now resolves to a private address)
=====================  ==========================================================================

``error`` is one of the ``AttemptError`` values; an error string outside that vocabulary counts as a
transient failure (``retry``), the safe side for a message that must not be lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["AttemptError", "AttemptResult", "Outcome", "classify"]


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED_PERMANENTLY = "failed_permanently"
    ENDPOINT_GONE = "endpoint_gone"


class AttemptError(StrEnum):
    """Why an attempt got no HTTP status: the closed vocabulary of ``AttemptResult.error``."""

    TIMEOUT = "timeout"
    CONNECTION = "connection_error"
    DNS = "dns_error"
    PROTOCOL = "protocol_error"
    ENDPOINT_REJECTED = "endpoint_rejected"


_RETRYABLE_4XX = frozenset({408, 409, 425, 429})
_PERMANENT_ERRORS = frozenset({AttemptError.ENDPOINT_REJECTED.value})


@dataclass(frozen=True)
class AttemptResult:
    """One attempt as it happened: what the endpoint answered, or why it did not."""

    status_code: int | None
    latency_ms: float
    response_excerpt: str | None = None
    error: str | None = None
    error_detail: str | None = None
    retry_after_s: float | None = None

    @property
    def outcome(self) -> Outcome:
        return classify(self.status_code, self.error)


def classify(status_code: int | None, error: str | None) -> Outcome:
    """The outcome of an attempt; a status code, when there is one, decides over an error."""
    if status_code is None:
        if error is None:
            raise ValueError("an attempt has a status code or an error")
        return Outcome.FAILED_PERMANENTLY if error in _PERMANENT_ERRORS else Outcome.RETRY
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code == 410:
        return Outcome.ENDPOINT_GONE
    if status_code in _RETRYABLE_4XX or 500 <= status_code < 600:
        return Outcome.RETRY
    return Outcome.FAILED_PERMANENTLY
