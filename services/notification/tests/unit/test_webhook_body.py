from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from rastro_notification.domain.event_filter import EVENT_TYPES, TRACKING_STATUSES
from rastro_notification.domain.webhook_body import ETA_UPDATED, render_body, tracking_type

pytestmark = pytest.mark.unit

WHEN = datetime(2026, 11, 23, 14, 5, 11, 120000, tzinfo=timezone(timedelta(hours=-3)))


def test_the_body_has_the_standard_webhooks_shape() -> None:
    body = render_body(
        "tracking.delivered", WHEN, {"tracking_number": "AA1BR"}, tenant_id="acme", event_id="01J"
    )
    assert json.loads(body) == {
        "type": "tracking.delivered",
        "timestamp": "2026-11-23T14:05:11.120000-03:00",
        "data": {"tracking_number": "AA1BR", "tenant_id": "acme", "event_id": "01J"},
    }


def test_the_body_is_compact_utf8() -> None:
    body = render_body(ETA_UPDATED, WHEN, {"city": "São Paulo"}, tenant_id="acme", event_id="e")
    assert "São Paulo".encode() in body
    assert b": " not in body and b", " not in body


def test_tenant_and_event_id_are_ours_not_the_payloads() -> None:
    body = render_body(
        ETA_UPDATED, WHEN, {"tenant_id": "forged", "event_id": "x"}, tenant_id="acme", event_id="e"
    )
    assert json.loads(body)["data"] == {"tenant_id": "acme", "event_id": "e"}


def test_a_timestamp_without_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        render_body(ETA_UPDATED, datetime(2026, 1, 1), {}, tenant_id="acme", event_id="e")


def test_the_same_input_renders_the_same_bytes() -> None:
    def render() -> bytes:
        return render_body(
            ETA_UPDATED, datetime(2026, 1, 1, tzinfo=UTC), {"b": 1, "a": 2}, tenant_id="t", event_id="e"
        )

    assert render() == render()


@pytest.mark.parametrize("status", TRACKING_STATUSES)
def test_every_status_has_a_subscribable_type(status: str) -> None:
    assert tracking_type(status) in EVENT_TYPES


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError):
        tracking_type("teleported")
