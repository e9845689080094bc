"""Regression (found by the API fuzzer): an event with NUL (``\\u0000``) in a field passed validation,
then Postgres refused the whole batch (a 500). It is rejected alone now, by index and field."""

from __future__ import annotations

from typing import Any

import pytest

from rastro_ingest.domain.events_in import read_events

pytestmark = pytest.mark.unit


def tracking(**changes: Any) -> dict[str, Any]:
    event = {
        "type": "tracking.event",
        "carrier": "correios",
        "tracking_number": "AA123456785BR",
        "status_code": "BDE-01",
        "occurred_at": "2026-11-23T14:05:11-03:00",
        "location": {"city": "São Paulo", "state": "SP", "country": "BR"},
    }
    return {**event, **changes}


def test_only_the_event_with_nul_is_rejected_and_the_field_is_named() -> None:
    bad_city = tracking(location={"city": "S\x00o Paulo", "state": "SP", "country": "BR"})
    accepted, rejected = read_events([tracking(), bad_city, tracking(description="ok\x00")])
    assert [a.index for a in accepted] == [0]
    assert [(r.index, r.errors[0]["field"]) for r in rejected] == [(1, "location.city"), (2, "description")]
    assert "NUL" in rejected[0].errors[0]["message"]


def test_nul_in_a_key_or_in_an_ignored_field_is_refused_too() -> None:
    _, rejected = read_events([tracking(**{"extra\x00": "x"}), tracking(notes=["a", "b\x00"])])
    assert [r.errors[0]["field"] for r in rejected] == ["extra\\u0000", "notes.1"]
