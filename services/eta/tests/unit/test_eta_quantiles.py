"""Decayed streaming quantiles: accuracy against exact quantiles, decay, order independence, state."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rastro_eta.domain.quantiles import DecayedQuantiles, nearest_rank

pytestmark = pytest.mark.unit


def test_without_decay_quantiles_match_the_exact_ones_within_a_bin() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(2.2, 0.5) for _ in range(2000)]
    q = DecayedQuantiles(bin_days=0.25, half_life_days=None)
    for i, v in enumerate(values):
        q.add(v, at=float(i))
    for level in (0.1, 0.5, 0.9):
        assert q.quantile(level) == pytest.approx(nearest_rank(values, level), abs=0.25)
    assert q.count == 2000 and q.weight_at(1e9) == 2000


def test_decay_lets_a_slowdown_move_the_median_within_days() -> None:
    q = DecayedQuantiles(half_life_days=7.0)
    for day in range(60):
        q.add(3.0, at=float(day))
    for day in range(60, 70):  # the carrier slows down: ten days of 8-day deliveries
        q.add(8.0, at=float(day))
    assert q.quantile(0.5) == pytest.approx(8.0, abs=0.25)
    undecayed = DecayedQuantiles(half_life_days=None)
    for day in range(70):
        undecayed.add(3.0 if day < 60 else 8.0, at=float(day))
    assert undecayed.quantile(0.5) == pytest.approx(3.0, abs=0.25)


def test_weight_halves_every_half_life() -> None:
    q = DecayedQuantiles(half_life_days=10.0)
    q.add(2.0, at=100.0)
    q.add(2.0, at=100.0)
    assert q.weight_at(100.0) == pytest.approx(2.0)
    assert q.weight_at(110.0) == pytest.approx(1.0)
    assert q.weight_at(130.0) == pytest.approx(0.25)


@given(st.lists(st.tuples(st.floats(0, 60), st.floats(0, 5000)), min_size=1, max_size=60), st.randoms())
def test_the_result_does_not_depend_on_arrival_order(
    samples: list[tuple[float, float]], rng: random.Random
) -> None:
    a, b = DecayedQuantiles(half_life_days=30.0), DecayedQuantiles(half_life_days=30.0)
    for value, at in samples:
        a.add(value, at)
    shuffled = samples[:]
    rng.shuffle(shuffled)
    for value, at in shuffled:
        b.add(value, at)
    for level in (0.5, 0.9):
        assert a.quantile(level) == pytest.approx(b.quantile(level), abs=1e-3)  # float rounding only


def test_far_apart_samples_rescale_without_overflow() -> None:
    q = DecayedQuantiles(half_life_days=1.0)
    q.add(1.0, at=0.0)
    q.add(5.0, at=1000.0)  # 2^1000 would overflow without moving the landmark
    assert q.quantile(0.5) == pytest.approx(5.0, abs=0.25)


def test_state_round_trips_and_negative_offsets_are_kept() -> None:
    q = DecayedQuantiles(half_life_days=30.0, min_days=-90.0)
    for i, v in enumerate([-10.0, -3.5, 0.2, 4.0]):
        q.add(v, at=float(i))
    again = DecayedQuantiles.from_state(q.to_state())
    assert again == q
    assert again.quantile(0.1) == pytest.approx(-10.0, abs=0.25)
    assert again.quantiles((0.25, 0.5, 0.9)) == pytest.approx(
        (q.quantile(0.25), q.quantile(0.5), q.quantile(0.9))
    )


def test_nonsense_is_refused() -> None:
    with pytest.raises(ValueError):
        DecayedQuantiles(half_life_days=0)
    with pytest.raises(ValueError):
        DecayedQuantiles().add(-1.0, at=0.0)
    with pytest.raises(ValueError):
        DecayedQuantiles().quantile(1.0)
    assert DecayedQuantiles().quantile(0.5) is None
    with pytest.raises(ValueError):
        nearest_rank([], 0.5)
