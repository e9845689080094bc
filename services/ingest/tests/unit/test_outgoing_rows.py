"""The outbox rows of an accepted batch are, byte for byte, the records ``new_event`` + ``encode_event``
give, only cheaper to build (the hot path of ``POST /v1/events``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from rastro_events import decode_event, encode_event, headers_for, new_event
from rastro_events.ids import scoped_event_id
from rastro_ingest.domain.events_in import Accepted, read_events
from rastro_ingest.outgoing import outbox_rows

pytestmark = pytest.mark.unit
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
EVENTS: list[dict[str, Any]] = [
    {
        "type": "tracking.event",
        "carrier": "correios",
        "tracking_number": 'AA123"\\456785BR',  # JSON escapes in the key and the subject
        "status_code": "BDE-01",
        "description": "Objeto entregue ao destinatário \u2028 ✓",
        "occurred_at": "2026-11-23T14:05:11.5-03:00",
        "location": {"city": "São Paulo", "state": "SP", "country": "BR"},
        "raw": {"nested": [1, 2.5, None, True], "x": None},
    },
    {
        "type": "order.created",
        "order_id": "PED-1",
        "occurred_at": "2026-11-21T10:00:00Z",
        "event_id": "erp-7",
    },
    {
        "type": "invoice.issued",
        "order_id": "PED-1",
        "occurred_at": "2026-11-21T11:00:00+00:00",
        "invoice_number": "123",
        "invoice_key": "3" * 44,
    },
    {
        "type": "order.shipped",
        "order_id": "PED-1",
        "tracking_number": "AA123456785BR",
        "carrier": "correios",
        "service": "SEDEX",
        "occurred_at": "2026-11-21T12:00:00-03:00",
        "destination": {"city": "Recife", "state": "PE"},
        "promised_date": "2026-11-25",
    },
    {
        "type": "order.cancelled",
        "order_id": "PED-2",
        "occurred_at": "2026-11-22T08:00:00-03:00",
        "reason": None,
    },
]


def expected(a: Accepted, tenant: str, event_id: str, now: datetime, traceparent: str | None) -> Any:
    envelope = new_event(
        a.payload,
        tenant_id=tenant,
        source=f"/tenants/{tenant}/api",
        time=now,
        event_id=event_id,
        traceparent=traceparent,
    )
    return a.payload.topic, envelope.subject.encode(), encode_event(envelope), headers_for(envelope)


@pytest.mark.parametrize("traceparent", [None, TRACE])
@pytest.mark.parametrize(
    "now",
    [datetime(2026, 11, 23, 17, 5, 11, 120000, tzinfo=UTC), datetime(2026, 11, 23, 17, 5, 11, tzinfo=UTC)],
)
def test_rows_are_the_records_new_event_and_encode_event_give(traceparent: str | None, now: datetime) -> None:
    accepted, rejected = read_events(EVENTS)
    assert not rejected and len(accepted) == len(EVENTS)
    ids, rows = outbox_rows(accepted, "acme-br", traceparent=traceparent, now=now)
    assert len(ids) == len(rows) == len(EVENTS)
    for a, event_id, (topic, key, value, names, values) in zip(accepted, ids, rows, strict=True):
        assert (topic, key, value, list(zip(names, values, strict=True))) == expected(
            a, "acme-br", event_id, now, traceparent
        )
        envelope, payload = decode_event(value)
        assert payload == a.payload and envelope.id == event_id and envelope.time == now
        assert not {"type", "event_id"} & envelope.data.keys()  # the request's fields, not the payload's


def test_a_client_event_id_is_scoped_and_the_others_are_fresh_ulids() -> None:
    accepted, _ = read_events(EVENTS)
    ids, _ = outbox_rows(accepted, "acme")
    assert ids[1] == scoped_event_id("acme", "erp-7")
    fresh = [i for n, i in enumerate(ids) if n != 1]
    assert all(ULID.match(i) for i in fresh) and len(set(fresh)) == len(fresh)


def test_an_empty_batch_has_no_rows() -> None:
    assert outbox_rows([], "acme") == ([], [])
