"""Pure parts of replay jobs: how much a chunk holds, how long to pause, and the filter a job keeps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rastro_dlq_replay.domain.dead_letter import Status
from rastro_dlq_replay.domain.jobs import REPLAYABLE, chunk_size, filter_from_json, filter_to_json, pause_s
from rastro_dlq_replay.domain.query import DeadLetterFilter

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("rate", "size"), [(0.1, 1), (1, 1), (8, 4), (500, 200), (10_000, 200)])
def test_a_chunk_is_about_half_a_second_of_the_rate(rate: float, size: int) -> None:
    assert chunk_size(rate) == size


def test_the_pause_keeps_the_average_within_the_rate() -> None:
    assert pause_s(200, 500, 0.1) == pytest.approx(0.3)
    assert pause_s(200, 500, 0.5) == 0.0  # slower than the rate already: no pause
    assert pause_s(0, 500, 0.0) == 0.0


def test_a_filter_survives_the_trip_through_json() -> None:
    selection = DeadLetterFilter(
        service="normalization",
        reason="unmapped_carrier_code",
        tenant="acme",
        event_type="rastro.tracking.raw.v1",
        since=datetime(2026, 11, 23, 14, 5, tzinfo=UTC),
        text="XX-99",
        statuses=(Status.NEW,),
    )
    kept = filter_to_json(selection)
    assert "until" not in kept and kept["statuses"] == ["new"]
    assert filter_from_json(kept) == selection


def test_a_kept_filter_without_statuses_replays_what_is_not_replayed_yet() -> None:
    assert filter_from_json({}).statuses == REPLAYABLE == (Status.NEW, Status.FAILED_AFTER_REPLAY)
