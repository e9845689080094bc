"""Nearest-rank quantiles and lane statistics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rastro_eta.domain.lanes import LaneKey
from rastro_eta.domain.quantiles import lane_stats, nearest_rank

pytestmark = pytest.mark.unit

TEN = [float(d) for d in range(1, 11)]


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        (TEN, 0.5, 5.0),
        (TEN, 0.9, 9.0),  # 0.9 × 10 is rank 9, not a float-rounded 10
        (TEN, 1.0, 10.0),
        (TEN, 0.01, 1.0),
        ([3.0], 0.9, 3.0),
        ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),  # unsorted input; the lower of the two middles
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0.9, 5.0),
    ],
)
def test_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert nearest_rank(values, q) == expected


@pytest.mark.parametrize("q", [0.0, -0.1, 1.01])
def test_q_outside_the_unit_interval_is_refused(q: float) -> None:
    with pytest.raises(ValueError):
        nearest_rank(TEN, q)


def test_no_values_have_no_quantile() -> None:
    with pytest.raises(ValueError):
        nearest_rank([], 0.5)


@given(
    st.lists(st.floats(min_value=0, max_value=365, allow_nan=False), min_size=1, max_size=300),
    st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]),
)
def test_at_least_q_of_the_samples_are_within_the_quantile_and_fewer_below_it(
    values: list[float], q: float
) -> None:
    result = nearest_rank(values, q)
    n = len(values)
    assert result in values
    assert sum(v <= result for v in values) >= q * n - 1e-9
    assert sum(v < result for v in values) < q * n + 1e-9


def test_lane_stats_report_p50_p90_and_the_sample_size() -> None:
    key = LaneKey.global_lane()
    stats = lane_stats(key, TEN)
    assert stats is not None
    assert (stats.key, stats.sample_size, stats.p50_days, stats.p90_days) == (key, 10, 5.0, 9.0)
    assert lane_stats(key, []) is None
