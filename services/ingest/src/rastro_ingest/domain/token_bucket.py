"""A token bucket: ``burst`` tokens at most, refilled at ``rate`` tokens per second.

Pure and clock-free: callers pass ``now`` (monotonic seconds), so the arithmetic is testable without
sleeping. A request costs one token (``cost`` lets a caller charge more); when the bucket lacks the
tokens the request is refused and nothing is taken, and the decision says when to come back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Decision", "TokenBucket"]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int  # the burst: what a full bucket holds
    remaining: int  # whole tokens left after this decision
    reset_s: int  # seconds until the bucket is full again (RateLimit-Reset)
    retry_after_s: int  # seconds until this request would pass (0 when allowed)


class TokenBucket:
    __slots__ = ("_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float, cost: float = 1.0) -> Decision:
        self._refill(now)
        allowed = cost <= self._tokens
        if allowed:
            self._tokens -= cost
        wait = 0.0 if allowed else (min(cost, self.burst) - self._tokens) / self.rate
        return Decision(
            allowed=allowed,
            limit=self.burst,
            remaining=max(math.floor(self._tokens), 0),
            reset_s=math.ceil((self.burst - self._tokens) / self.rate),
            retry_after_s=0 if allowed else max(math.ceil(wait), 1),
        )

    def full_at(self, now: float) -> bool:
        """A full bucket is the same as a new one, so a registry may forget it."""
        return self._tokens + max(now - self._updated, 0.0) * self.rate >= self.burst

    def _refill(self, now: float) -> None:
        elapsed = max(now - self._updated, 0.0)
        if self._tokens < self.burst:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._updated = now
