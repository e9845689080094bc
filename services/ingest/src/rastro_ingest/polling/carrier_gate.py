"""Calling a carrier politely: retries with exponential backoff and jitter (tenacity) on transient
failures, ``Retry-After`` honoured on 429, and the carrier's circuit breaker around the whole call so a
carrier that is down is left alone. (The token bucket paces every HTTP request inside the client,
token exchanges included: see ``Poller``.)"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from rastro_ingest.adapters.carriers.models import (
    CarrierRejected,
    CarrierThrottled,
    CarrierUnavailable,
    CircuitOpen,
)
from rastro_ingest.polling.circuit_breaker import CircuitBreaker

__all__ = ["CarrierGate", "RetryPolicy"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_wait_s: float = 0.5
    max_wait_s: float = 30.0


class CarrierGate:
    def __init__(self, carrier: str, breaker: CircuitBreaker, retry: RetryPolicy) -> None:
        self.carrier, self.breaker, self.retry = carrier, breaker, retry
        self._backoff = wait_random_exponential(multiplier=retry.base_wait_s, max=retry.max_wait_s)

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` under the carrier's limits. Raises ``CircuitOpen`` without calling when the
        circuit is open; ``CarrierUnavailable`` once retries are exhausted; ``CarrierRejected`` at once."""
        if not self.breaker.allow():
            raise CircuitOpen(f"{self.carrier}: circuit open")
        try:
            result = await self._with_retries(attempt)
        except CarrierUnavailable:
            self.breaker.record_failure()
            raise
        except CarrierRejected:
            self.breaker.record_success()  # the carrier answered: it is up, the request was wrong
            raise
        self.breaker.record_success()
        return result

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]]) -> T:
        async for trial in AsyncRetrying(
            retry=retry_if_exception_type(CarrierUnavailable),
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            reraise=True,
        ):
            with trial:
                return await attempt()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, CarrierThrottled) and error.retry_after_s is not None:
            bounded = min(error.retry_after_s, self.retry.max_wait_s)
            return bounded * random.uniform(1.0, 1.2)  # jitter, not cryptography
        return float(self._backoff(state))
