from __future__ import annotations

import pytest

from rastro_events.taxonomy import Status
from rastro_notification.domain.event_filter import (
    EVENT_TYPES,
    TRACKING_STATUSES,
    InvalidEventFilter,
    matches,
    validate_event_types,
    validate_subscribable,
)

pytestmark = pytest.mark.unit


def test_the_documented_statuses_are_the_taxonomy() -> None:
    assert set(TRACKING_STATUSES) == {s.value for s in Status}
    assert "tracking.delivered" in EVENT_TYPES
    assert "eta.updated" in EVENT_TYPES


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_the_wildcard_matches_everything(event_type: str) -> None:
    assert matches(["*"], event_type)


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["tracking.delivered"], "tracking.delivered", True),
        (["tracking.delivered"], "tracking.delivered_late", False),
        (["tracking.*"], "tracking.in_transit", True),
        (["tracking.*"], "eta.updated", False),
        (["tracking.*"], "tracking", False),
        (["trac*"], "tracking.delivered", False),
        (["eta.*"], "eta.updated", True),
        (["shipment.*"], "shipment.changed", True),
        (["shipment.*"], "shipments.changed", False),
        (["tracking.delivered", "eta.*"], "eta.updated", True),
        (["tracking.delivered", "eta.*"], "tracking.exception", False),
        ([], "tracking.delivered", False),
        (["delivered"], "tracking.delivered", False),
    ],
)
def test_patterns_match_exact_types_and_prefixes(
    patterns: list[str], event_type: str, expected: bool
) -> None:
    assert matches(patterns, event_type) is expected


def test_well_formed_filters_are_accepted() -> None:
    patterns = ["*", "tracking.*", "eta.updated", "shipment.*", "tracking.delivered"]
    assert validate_event_types(patterns) == tuple(patterns)


def test_a_bare_status_gets_a_hint() -> None:
    with pytest.raises(InvalidEventFilter, match=r"did you mean 'tracking\.delivered'"):
        validate_event_types(["delivered"])


@pytest.mark.parametrize(
    "pattern", ["", "tracking", "Tracking.*", "tracking.*.x", "*.delivered", "tracking.", "a..b"]
)
def test_malformed_filters_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidEventFilter):
        validate_event_types([pattern])


def test_a_filter_is_a_non_empty_list() -> None:
    with pytest.raises(InvalidEventFilter):
        validate_event_types([])
    with pytest.raises(InvalidEventFilter):
        validate_event_types("*")


@pytest.mark.parametrize(
    "patterns", [["*"], ["tracking.*"], ["eta.updated"], ["shipment.*"], ["shipment.changed"]]
)
def test_subscribable_filters_cover_a_type_we_send(patterns: list[str]) -> None:
    assert validate_subscribable(patterns) == tuple(patterns)


@pytest.mark.parametrize(
    "pattern", ["tracking.deliverd", "orders.*", "eta.predicted", "tracking.delivered.*"]
)
def test_a_filter_that_can_never_match_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidEventFilter, match="matches no event type"):
        validate_subscribable([pattern])


def test_a_filter_has_a_bounded_length() -> None:
    with pytest.raises(InvalidEventFilter, match="more than"):
        validate_subscribable(["tracking.delivered"] * 101)


def test_a_substatus_filter_takes_only_that_substatus_of_its_status() -> None:
    deviation = ["tracking.exception.route_deviation"]
    assert validate_subscribable(deviation) == tuple(deviation)
    assert matches(deviation, "tracking.exception", "exception.route_deviation")
    assert not matches(deviation, "tracking.exception", "exception.damaged")
    assert not matches(deviation, "tracking.in_transit", "in_transit.in_route")
    assert not matches(deviation, "eta.updated")
    # the plain type still takes every substatus, and a prefix still covers the narrowed types
    assert matches(["tracking.exception"], "tracking.exception", "exception.route_deviation")
    assert matches(["tracking.*"], "tracking.out_for_delivery", "out_for_delivery.nearby")


@pytest.mark.parametrize("pattern", ["tracking.exception.lost_in_space", "tracking.in_transit.nearby"])
def test_a_substatus_outside_the_taxonomy_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidEventFilter, match="matches no event type"):
        validate_subscribable([pattern])
