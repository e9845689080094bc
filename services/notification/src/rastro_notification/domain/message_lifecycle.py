"""What happens to a message after one delivery attempt (DESIGN §7). Pure: no I/O, no clock.

A message is ``pending`` until it is ``delivered`` or ``failed``:

=====================  ===========================================================================
attempt outcome        message
=====================  ===========================================================================
``delivered``          ``delivered``
``retry``              ``pending`` again after the schedule's next delay (jitter, ``Retry-After``);
                       ``failed`` (``retries_exhausted``) once the schedule is used up
``failed_permanently`` ``failed`` at once
``endpoint_gone``      ``failed`` at once, and the subscription is disabled (410 Gone)
=====================  ===========================================================================

``attempt_in_round`` counts attempts since the message was created or last resent, so a resend
starts the schedule again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from rastro_notification.domain.delivery import AttemptResult, Outcome
from rastro_notification.domain.retry_schedule import RetrySchedule

__all__ = ["MessageStatus", "Transition", "after_attempt", "describe_failure"]

EXCERPT_IN_ERROR = 200


class MessageStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Transition:
    status: MessageStatus
    retry_in_s: float | None = None  # set when the message stays pending
    disable_endpoint: bool = False
    reason: str | None = None  # why it failed, or why it is retried


def after_attempt(
    result: AttemptResult, attempt_in_round: int, schedule: RetrySchedule, rng: random.Random
) -> Transition:
    outcome = result.outcome
    if outcome is Outcome.DELIVERED:
        return Transition(MessageStatus.DELIVERED)
    if outcome is Outcome.ENDPOINT_GONE:
        return Transition(MessageStatus.FAILED, disable_endpoint=True, reason="endpoint_gone")
    if outcome is Outcome.FAILED_PERMANENTLY:
        return Transition(MessageStatus.FAILED, reason="failed_permanently")
    delay = schedule.next_delay(attempt_in_round, rng, result.retry_after_s)
    if delay is None:
        return Transition(MessageStatus.FAILED, reason="retries_exhausted")
    return Transition(MessageStatus.PENDING, retry_in_s=delay, reason="retry")


def describe_failure(result: AttemptResult) -> str | None:
    """One line saying why an attempt did not deliver (None when it did), fit for the API."""
    if result.outcome is Outcome.DELIVERED:
        return None
    if result.status_code is not None:
        detail = result.error_detail or (result.response_excerpt or "")[:EXCERPT_IN_ERROR]
        return f"HTTP {result.status_code}" + (f": {detail}" if detail else "")
    return f"{result.error}: {result.error_detail}" if result.error_detail else str(result.error)
