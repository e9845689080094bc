from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rastro_notification.domain.delivery import Outcome
from rastro_notification.domain.endpoint_health import (
    BreakerPolicy,
    EndpointHealth,
    after_endpoint_attempt,
)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = BreakerPolicy(failure_threshold=3, open_s=10, max_open_s=60, disable_after_s=5 * 86400)


def fail(health: EndpointHealth, times: int, outcome: Outcome = Outcome.RETRY) -> EndpointHealth:
    for _ in range(times):
        health = after_endpoint_attempt(health, outcome, NOW, POLICY).health
    return health


def test_the_circuit_opens_after_the_threshold_and_backs_off_doubling() -> None:
    health = fail(EndpointHealth(enabled=True), 2)
    assert health.consecutive_failures == 2 and not health.circuit_open(NOW)
    change = after_endpoint_attempt(health, Outcome.RETRY, NOW, POLICY)
    assert change.circuit_opened and change.health.circuit_open_until == NOW + timedelta(seconds=10)
    assert fail(change.health, 1).circuit_open_until == NOW + timedelta(seconds=20)
    assert fail(change.health, 10).circuit_open_until == NOW + timedelta(seconds=60)  # capped


def test_a_delivery_closes_the_circuit_and_ends_the_failing_streak() -> None:
    health = fail(EndpointHealth(enabled=True), 5)
    closed = after_endpoint_attempt(health, Outcome.DELIVERED, NOW, POLICY).health
    assert (closed.consecutive_failures, closed.circuit_open_until, closed.failing_since) == (0, None, None)


def test_a_4xx_answer_closes_the_circuit_but_keeps_the_streak() -> None:
    health = fail(EndpointHealth(enabled=True), 5)
    answered = after_endpoint_attempt(health, Outcome.FAILED_PERMANENTLY, NOW, POLICY).health
    assert answered.consecutive_failures == 0 and answered.circuit_open_until is None
    assert answered.failing_since == NOW and answered.enabled


def test_failing_for_the_whole_period_disables_once() -> None:
    since = NOW - timedelta(days=5, seconds=1)
    health = EndpointHealth(enabled=True, failing_since=since, consecutive_failures=40)
    change = after_endpoint_attempt(health, Outcome.RETRY, NOW, POLICY)
    assert change.disabled_now and not change.health.enabled
    assert change.health.disabled_reason == "failing_continuously"
    again = after_endpoint_attempt(change.health, Outcome.RETRY, NOW, POLICY)
    assert not again.disabled_now  # already disabled: the owner is told once


def test_failing_for_less_than_the_period_does_not_disable() -> None:
    health = EndpointHealth(enabled=True, failing_since=NOW - timedelta(days=4, hours=23))
    assert after_endpoint_attempt(health, Outcome.RETRY, NOW, POLICY).health.enabled


def test_410_disables_at_once() -> None:
    change = after_endpoint_attempt(EndpointHealth(enabled=True), Outcome.ENDPOINT_GONE, NOW, POLICY)
    assert change.disabled_now and change.health.disabled_reason == "endpoint_gone"
