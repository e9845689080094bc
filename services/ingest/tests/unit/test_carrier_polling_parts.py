"""The pure parts of carrier polling: the schedule, the token bucket, the circuit breaker, the gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rastro_ingest.adapters.carriers.models import (
    CarrierRejected,
    CarrierThrottled,
    CarrierUnavailable,
    CircuitOpen,
)
from rastro_ingest.polling.carrier_gate import CarrierGate, RetryPolicy
from rastro_ingest.polling.circuit_breaker import CircuitBreaker
from rastro_ingest.polling.schedule import PollPolicy, next_poll
from rastro_ingest.polling.token_bucket import TokenBucket

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
POLICY = PollPolicy()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_in_transit_is_polled_hourly() -> None:
    assert next_poll(POLICY, now=NOW, delivered_at=None, last_news_at=NOW) == (
        "in_transit",
        NOW + timedelta(hours=1),
    )


def test_delivered_is_polled_daily_for_n_days_then_stopped() -> None:
    delivered = NOW - timedelta(hours=1)
    assert next_poll(POLICY, now=NOW, delivered_at=delivered, last_news_at=NOW) == (
        "delivered",
        NOW + timedelta(days=1),
    )
    last = next_poll(
        POLICY, now=delivered + timedelta(days=2, hours=12), delivered_at=delivered, last_news_at=NOW
    )
    assert last == ("delivered", delivered + timedelta(days=3))  # never past the end of the window
    assert next_poll(POLICY, now=delivered + timedelta(days=3), delivered_at=delivered, last_news_at=NOW) == (
        "stopped",
        None,
    )


def test_thirty_days_without_news_expires() -> None:
    assert next_poll(POLICY, now=NOW, delivered_at=None, last_news_at=NOW - timedelta(days=30)) == (
        "expired",
        None,
    )
    state, _ = next_poll(POLICY, now=NOW, delivered_at=None, last_news_at=NOW - timedelta(days=29, hours=23))
    assert state == "in_transit"


def test_the_bucket_spaces_calls_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(5.0, clock=clock)
    assert bucket.try_take() == 0.0
    assert bucket.try_take() == pytest.approx(0.2)
    clock.now += 0.1
    assert bucket.try_take() == pytest.approx(0.1)
    clock.now += 0.1
    assert bucket.try_take() == 0.0


def test_no_one_second_window_holds_more_than_the_rate() -> None:
    clock = Clock()
    bucket, granted = TokenBucket(7.0, clock=clock), []
    while clock.now < 1010.0:
        wait = bucket.try_take()
        if wait == 0.0:
            granted.append(clock.now)
        clock.now += 0.013
    assert max(sum(1 for t in granted if start <= t < start + 1.0) for start in granted) <= 7
    assert len(granted) >= 69


def test_the_breaker_opens_after_the_threshold_and_closes_after_a_good_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=10, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow() and breaker.opened_count == 1
    clock.now += 10
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_success()
    assert breaker.state == "closed"


def test_a_failed_trial_reopens_the_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=10, clock=clock)
    breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and breaker.seconds_until_trial() == pytest.approx(10)


def gate(threshold: int = 2) -> CarrierGate:
    return CarrierGate("fake", CircuitBreaker(threshold, 60.0), RetryPolicy(3, 0.001, 0.01))


async def test_the_gate_retries_transient_failures_then_succeeds() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise (
                CarrierThrottled("429", retry_after_s=0.001) if len(calls) == 1 else CarrierUnavailable("503")
            )
        return "ok"

    g = gate()
    assert await g.call(flaky) == "ok" and len(calls) == 3 and g.breaker.state == "closed"


async def test_the_gate_opens_the_circuit_and_then_makes_no_call() -> None:
    calls: list[int] = []

    async def down() -> str:
        calls.append(1)
        raise CarrierUnavailable("503")

    g = gate(threshold=2)
    for _ in range(2):
        with pytest.raises(CarrierUnavailable):
            await g.call(down)
    assert len(calls) == 6 and g.breaker.state == "open"
    with pytest.raises(CircuitOpen):
        await g.call(down)
    assert len(calls) == 6


async def test_a_rejection_is_not_retried_and_does_not_open_the_circuit() -> None:
    calls: list[int] = []

    async def bad_credentials() -> str:
        calls.append(1)
        raise CarrierRejected("401")

    g = gate(threshold=1)
    with pytest.raises(CarrierRejected):
        await g.call(bad_credentials)
    assert len(calls) == 1 and g.breaker.state == "closed"
