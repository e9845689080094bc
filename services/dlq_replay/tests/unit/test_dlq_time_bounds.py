"""Regression (found by the API fuzzer): ``?until=0001-01-01T00:00:00+10:05`` has no UTC equivalent;
it reached the database (a 500), or, on the streamed export, broke the answer after its 200."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rastro_dlq_replay.api_deps import aware
from rastro_kit.http import ProblemError

pytestmark = pytest.mark.unit


def test_a_time_without_a_utc_equivalent_is_a_422() -> None:
    for moment in ("0001-01-01T00:00:00+10:05", "9999-12-31T23:59:59-10:00"):
        with pytest.raises(ProblemError) as caught:
            aware(datetime.fromisoformat(moment))
        assert caught.value.status == 422


def test_times_are_utc_and_naive_ones_are_taken_as_utc() -> None:
    brt = datetime(2026, 11, 23, 11, 5, tzinfo=timezone(timedelta(hours=-3)))
    assert aware(brt) == datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
    assert aware(brt).tzinfo is UTC  # type: ignore[union-attr]
    assert aware(datetime(2026, 11, 23, 14, 5)) == datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
    assert aware(None) is None
