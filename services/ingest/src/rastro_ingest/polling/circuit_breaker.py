"""A circuit breaker per carrier: after ``failure_threshold`` consecutive failures the carrier is not
called for ``reset_after_s``; then one trial call (half-open) decides whether to close or re-open."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

__all__ = ["CircuitBreaker", "CircuitState"]

CircuitState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 5,
        reset_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold, self.reset_after_s, self._clock = failure_threshold, reset_after_s, clock
        self._state: CircuitState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self.opened_count = 0

    @property
    def state(self) -> CircuitState:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_after_s:
            return "half_open"
        return self._state

    def allow(self) -> bool:
        """May a call go out now? In half-open, only the first caller gets through (the trial)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open":
            self._state, self._opened_at = "open", self._clock()  # the trial holds the door
            return True
        return False

    def record_success(self) -> None:
        self._state, self._failures = "closed", 0

    def record_failure(self) -> None:
        self._failures += 1
        if self._state == "open" or self._failures >= self.failure_threshold:
            if self._state != "open":
                self.opened_count += 1
            self._state, self._opened_at = "open", self._clock()

    def seconds_until_trial(self) -> float:
        if self._state != "open":
            return 0.0
        return max(0.0, self.reset_after_s - (self._clock() - self._opened_at))
