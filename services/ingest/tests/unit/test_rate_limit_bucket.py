"""The token bucket and the per-key limiter, on a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rastro_ingest.domain.token_bucket import TokenBucket
from rastro_ingest.rate_limit import RateLimiter, rate_limit_headers

pytestmark = pytest.mark.unit


def test_burst_then_refused_with_retry_after() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    decisions = [bucket.take(0.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.retry_after_s == 1  # one token at 2/s: 0.5 s, rounded up to a whole second
    assert refused.reset_s == 2  # 3 tokens at 2/s: 1.5 s to a full bucket
    assert refused.limit == 3


def test_refill_is_linear_and_capped_at_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=5, now=0.0)
    for _ in range(5):
        bucket.take(0.0)
    assert not bucket.take(0.05).allowed  # half a token
    assert bucket.take(0.15).allowed
    assert bucket.take(100.0).remaining == 4  # refilled to 5, never more
    assert not bucket.full_at(100.05) and bucket.full_at(100.2)


def test_refused_request_takes_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=0.0)
    assert bucket.take(0.0).allowed
    for _ in range(10):
        assert not bucket.take(0.5).allowed
    assert bucket.take(1.0).allowed


@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), min_size=1, max_size=200))
def test_never_more_than_burst_plus_rate_times_window(offsets: list[float]) -> None:
    rate, burst = 3.0, 4
    bucket = TokenBucket(rate, burst, now=0.0)
    times = sorted(offsets)
    allowed = sum(bucket.take(t).allowed for t in times)
    assert allowed <= burst + rate * times[-1] + 1e-9


def test_limiter_keeps_one_bucket_per_key_and_forgets_full_ones() -> None:
    now = [0.0]
    limiter = RateLimiter(1.0, 2, clock=lambda: now[0], max_keys=2)
    assert limiter.check("a") and limiter.check("a")
    refused = limiter.check("a")
    assert refused is not None and not refused.allowed
    other = limiter.check("b")
    assert other is not None and other.allowed  # keys do not share a bucket
    now[0] = 10.0
    assert limiter.check("c") is not None
    assert len(limiter) == 1  # "a" and "b" were full again, so forgotten


def test_disabled_limiter_decides_nothing() -> None:
    assert RateLimiter(0, 10).check("a") is None


def test_headers_follow_the_ietf_draft() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=0.0)
    assert rate_limit_headers(bucket.take(0.0)) == {
        "RateLimit-Limit": "1",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "1",
    }
    refused = rate_limit_headers(bucket.take(0.0))
    assert refused["Retry-After"] == "1"
