"""Per-API-key rate limiting of ingest's write routes (a token bucket per key, in this process).

Counted in **requests**, not events: a batch of 1,000 events costs one token like a single event does,
because a request is the unit of work here (one transaction, one outbox insert) and batching is the way
to send volume; the body-size and batch limits bound what one request may carry.

Answers carry the IETF ``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset`` headers; a
refused request gets ``429`` problem+json with ``Retry-After``. Buckets live in memory, so the limit
is per ingest instance: N instances behind a load balancer allow up to N times the rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request

from rastro_ingest.domain.token_bucket import Decision, TokenBucket
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, require_scope

__all__ = ["RateLimitHeaders", "RateLimiter", "rate_limit_headers", "rate_limited"]

_STATE_KEY = "rate_limit"


class RateLimiter:
    """Buckets by API key id. ``rate <= 0`` turns limiting off. Full buckets are forgotten when the
    registry grows past ``max_keys``, so memory stays bounded by the keys active right now."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.rate, self.burst = rate, max(burst, 1)
        self._clock, self._max_keys = clock, max_keys
        self._buckets: dict[str, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def check(self, key_id: str) -> Decision | None:
        if not self.enabled:
            return None
        now = self._clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._forget_full(now)
            bucket = self._buckets[key_id] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget_full(self, now: float) -> None:
        for key_id in [k for k, b in self._buckets.items() if b.full_at(now)]:
            del self._buckets[key_id]


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_s),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after_s)
    return headers


def rate_limited(scope: str) -> Any:
    """FastAPI dependency: ``require_scope(scope)``, then one token from the caller's key bucket."""

    async def dependency(request: Request, principal: Principal = require_scope(scope)) -> Principal:
        limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
        decision = limiter.check(principal.key_id) if limiter is not None else None
        if decision is None:
            return principal
        headers = rate_limit_headers(decision)
        if not decision.allowed:
            raise ProblemError(
                429,
                f"Rate limit of this API key exceeded; retry in {decision.retry_after_s} s.",
                type_="rate-limited",
                headers=headers,
            )
        request.state.rate_limit = headers
        return principal

    return Depends(dependency)


class RateLimitHeaders:
    """ASGI middleware: copies the headers a ``rate_limited`` route recorded onto its response, whatever
    kind of response the route returned."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = (scope.get("state") or {}).get(_STATE_KEY)
                if extra:
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    added = [
                        (k.lower().encode(), v.encode())
                        for k, v in extra.items()
                        if k.lower().encode() not in present
                    ]
                    message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
