from __future__ import annotations

import random

import pytest

from rastro_notification.domain.delivery import AttemptError, AttemptResult
from rastro_notification.domain.message_lifecycle import MessageStatus, after_attempt, describe_failure
from rastro_notification.domain.retry_schedule import RetrySchedule

pytestmark = pytest.mark.unit

SCHEDULE = RetrySchedule((5, 300))


def step(result: AttemptResult, attempt: int = 1) -> tuple[MessageStatus, float | None, bool, str | None]:
    t = after_attempt(result, attempt, SCHEDULE, random.Random(1))
    return t.status, t.retry_in_s, t.disable_endpoint, t.reason


def test_a_2xx_delivers() -> None:
    assert step(AttemptResult(204, 12.0)) == (MessageStatus.DELIVERED, None, False, None)


def test_410_fails_the_message_and_disables_the_endpoint() -> None:
    assert step(AttemptResult(410, 12.0)) == (MessageStatus.FAILED, None, True, "endpoint_gone")


@pytest.mark.parametrize(
    "result", [AttemptResult(400, 1.0), AttemptResult(None, 0.0, error=AttemptError.ENDPOINT_REJECTED)]
)
def test_a_permanent_failure_fails_at_once(result: AttemptResult) -> None:
    assert step(result) == (MessageStatus.FAILED, None, False, "failed_permanently")


def test_a_transient_failure_waits_for_the_schedule() -> None:
    status, delay, disable, _ = step(AttemptResult(503, 1.0))
    assert status is MessageStatus.PENDING and not disable
    assert delay is not None and 4 <= delay <= 6
    _, delay, _, _ = step(AttemptResult(None, 15000.0, error=AttemptError.TIMEOUT), attempt=2)
    assert delay is not None and 240 <= delay <= 360


def test_retry_after_is_honoured() -> None:
    _, delay, _, _ = step(AttemptResult(429, 1.0, retry_after_s=60))
    assert delay is not None and 60 <= delay <= 72


def test_the_schedule_used_up_fails_the_message() -> None:
    assert step(AttemptResult(500, 1.0), attempt=3) == (
        MessageStatus.FAILED,
        None,
        False,
        "retries_exhausted",
    )


def test_failures_are_described_for_the_api() -> None:
    assert describe_failure(AttemptResult(200, 1.0)) is None
    assert describe_failure(AttemptResult(500, 1.0, response_excerpt="boom")) == "HTTP 500: boom"
    assert describe_failure(AttemptResult(502, 1.0)) == "HTTP 502"
    assert describe_failure(AttemptResult(307, 1.0, error_detail="redirect to /x not followed")) == (
        "HTTP 307: redirect to /x not followed"
    )
    timeout = AttemptResult(
        None, 1.0, error=AttemptError.TIMEOUT, error_detail="no complete response within 15 s"
    )
    assert describe_failure(timeout) == "timeout: no complete response within 15 s"
    assert describe_failure(AttemptResult(None, 1.0, error=AttemptError.CONNECTION)) == "connection_error"
