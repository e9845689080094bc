"""A token bucket: at most ``rate`` calls per second on average, bursts of at most ``capacity``.

With ``capacity=1`` (the default) calls are spaced at least ``1/rate`` apart, so no one-second window
ever holds more than ``rate`` calls — what a carrier's "N requests per second" limit means.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    def __init__(
        self, rate: float, capacity: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be > 0 and capacity >= 1")
        self.rate, self.capacity, self._clock = rate, capacity, clock
        self._tokens = capacity
        self._updated = clock()
        self._lock = asyncio.Lock()

    def try_take(self) -> float:
        """Take a token now (0.0), or return how many seconds until one is due (nothing taken)."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

    async def acquire(self) -> None:
        """Wait for a token. Waiters are served one at a time, in arrival order."""
        async with self._lock:
            wait = self.try_take()
            while wait > 0:  # the wait is known exactly: nothing to be woken by
                await asyncio.sleep(wait)
                wait = self.try_take()
