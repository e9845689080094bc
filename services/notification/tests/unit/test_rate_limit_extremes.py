"""Regression (found by the API fuzzer): a subscription with ``rate_limit_per_s`` = 5e-324 was
accepted, and ``1 / rate`` overflowed in every claim, so the dispatcher crashed for every endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from rastro_notification.api import SubscriptionIn, SubscriptionPatch
from rastro_notification.domain.rate_limit import MIN_RATE_PER_S, allowance, next_tat

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 23, tzinfo=UTC)
TINY = 5e-324


def test_a_stored_tiny_rate_is_the_slowest_limit_and_raises_nothing() -> None:
    assert allowance(None, T0, TINY) == 1
    tat = next_tat(None, T0, TINY, 1)
    assert tat == T0 + timedelta(seconds=1 / MIN_RATE_PER_S)
    assert allowance(tat, T0, TINY) == 0


@pytest.mark.parametrize("model", [SubscriptionIn, SubscriptionPatch])
def test_the_api_refuses_a_rate_below_the_slowest_limit(model: type[SubscriptionPatch]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate({"url": "https://example.com/hooks", "rate_limit_per_s": TINY})
    ok = model.model_validate({"url": "https://example.com/hooks", "rate_limit_per_s": MIN_RATE_PER_S})
    assert ok.rate_limit_per_s == MIN_RATE_PER_S
