from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rastro_notification.domain.retry_schedule import (
    RETRY_AFTER_MAX_S,
    RetrySchedule,
    parse_retry_after,
)

pytestmark = pytest.mark.unit

DEFAULT = RetrySchedule.default()


def test_the_default_schedule_is_the_one_in_the_design() -> None:
    assert DEFAULT.delays_s == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert DEFAULT.max_attempts == 8


@given(attempt=st.integers(min_value=1, max_value=7), seed=st.integers())
def test_every_delay_is_the_scheduled_one_within_20_percent(attempt: int, seed: int) -> None:
    delay = DEFAULT.next_delay(attempt, random.Random(seed), None)
    scheduled = DEFAULT.delays_s[attempt - 1]
    assert delay is not None
    assert scheduled * 0.8 <= delay <= scheduled * 1.2


def test_jitter_spreads_messages_that_failed_together() -> None:
    rng = random.Random(7)
    delays = {DEFAULT.next_delay(2, rng, None) for _ in range(20)}
    assert len(delays) == 20


def test_after_the_last_retry_it_gives_up() -> None:
    rng = random.Random(1)
    assert DEFAULT.next_delay(7, rng, None) is not None
    assert DEFAULT.next_delay(8, rng, None) is None
    assert DEFAULT.next_delay(8, rng, retry_after=10) is None


def test_attempts_are_numbered_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        DEFAULT.next_delay(0, random.Random(1), None)


@given(seed=st.integers())
def test_retry_after_longer_than_the_schedule_is_honoured_never_undercut(seed: int) -> None:
    delay = DEFAULT.next_delay(1, random.Random(seed), retry_after=120)
    assert delay is not None
    assert 120 <= delay <= 144


@given(seed=st.integers(), retry_after=st.floats(min_value=-100, max_value=60))
def test_retry_after_never_brings_a_retry_forward(seed: int, retry_after: float) -> None:
    delay = DEFAULT.next_delay(2, random.Random(seed), retry_after=retry_after)
    assert delay is not None
    assert delay >= 300 * 0.8


@given(seed=st.integers(), retry_after=st.floats(min_value=RETRY_AFTER_MAX_S, allow_infinity=True))
def test_a_huge_retry_after_is_clamped_to_a_day(seed: int, retry_after: float) -> None:
    assert DEFAULT.next_delay(1, random.Random(seed), retry_after=retry_after) == RETRY_AFTER_MAX_S


def test_a_tiny_retry_after_is_raised_to_one_second() -> None:
    fast = RetrySchedule.parse("0")
    delay = fast.next_delay(1, random.Random(3), retry_after=0)
    assert delay is not None
    assert 1 <= delay <= 1.2


def test_a_nan_retry_after_is_ignored() -> None:
    delay = DEFAULT.next_delay(1, random.Random(3), retry_after=math.nan)
    assert delay is not None
    assert 4 <= delay <= 6


def test_the_setting_form_is_parsed() -> None:
    assert RetrySchedule.parse("5,300,1800").delays_s == (5, 300, 1800)
    assert RetrySchedule.parse(" 0.5 , 2 ").delays_s == (0.5, 2)
    assert RetrySchedule.parse("1").max_attempts == 2


@pytest.mark.parametrize("text", ["", "5,", "5,,6", "-1", "five", "1e3", "nan", "inf"])
def test_malformed_settings_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="comma-separated"):
        RetrySchedule.parse(text)


def test_a_schedule_refuses_negative_delays_and_silly_jitter() -> None:
    with pytest.raises(ValueError):
        RetrySchedule((5, -1))
    with pytest.raises(ValueError):
        RetrySchedule((5,), jitter=1.5)


NOW = datetime(2026, 11, 23, 14, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("Mon, 23 Nov 2026 14:02:00 GMT", 120.0),
        ("Mon, 23 Nov 2026 13:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("", None),
    ],
)
def test_retry_after_headers_are_read(header: str, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_a_retry_after_date_is_relative_to_now() -> None:
    later = NOW + timedelta(minutes=10)
    assert parse_retry_after("Mon, 23 Nov 2026 14:02:00 GMT", later) == 0.0
