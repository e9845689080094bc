from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rastro_notification.domain.rate_limit import allowance, next_tat

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 23, tzinfo=UTC)


def test_an_idle_endpoint_gets_a_burst_of_one_seconds_worth() -> None:
    assert allowance(None, T0, 5) == 5
    assert allowance(T0 - timedelta(hours=1), T0, 5) == 5
    assert allowance(None, T0, 0.5) == 1


def test_after_the_burst_sends_come_at_the_rate() -> None:
    tat = next_tat(None, T0, 5, 5)
    assert allowance(tat, T0, 5) == 0
    assert allowance(tat, T0 + timedelta(seconds=0.2), 5) == 1
    assert allowance(tat, T0 + timedelta(seconds=1), 5) == 5


@given(rate=st.floats(0.1, 200), steps=st.lists(st.floats(0, 2), min_size=1, max_size=60))
def test_no_window_sees_more_than_the_rate_plus_the_burst(rate: float, steps: list[float]) -> None:
    now, tat, sent = T0, None, 0
    for step in steps:
        now += timedelta(seconds=step)
        n = allowance(tat, now, rate)
        tat, sent = next_tat(tat, now, rate, n), sent + n
    elapsed = (now - T0).total_seconds()
    assert sent <= rate * elapsed + max(1, int(rate)) + 1
