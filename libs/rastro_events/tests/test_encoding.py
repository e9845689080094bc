"""``encode_new_event`` gives, byte for byte, the record ``encode_event(new_event(...))`` gives."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rastro_events import (
    EtaPredicted,
    Lane,
    Location,
    NormalizedTrackingEvent,
    Payload,
    ShipmentChanged,
    Status,
    decode_event,
    encode_event,
    headers_for,
    new_event,
)
from rastro_events.encoding import HEADER_NAMES, encode_new_event

pytestmark = pytest.mark.unit

_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_offsets)
_text = st.text(max_size=40)
_tenants = st.from_regex(r"^[a-z0-9][a-z0-9_-]{0,20}$", fullmatch=True)


def _normalized(text: str, at: datetime) -> NormalizedTrackingEvent:
    return NormalizedTrackingEvent(
        tracking_number=f"AA{text}BR",
        carrier="correios",
        service="sedex",
        status_code="BDE-01",
        status=Status.DELIVERED,
        substatus="delivered",
        description=text or None,
        descriptions={"pt-BR": text, "en": "Delivered"},
        occurred_at=at,
        occurred_at_utc=at.astimezone(UTC),
        location=Location(city=text or "São Paulo", state="SP", country="BR"),
        raw_event_id="01J0000000000000000000000",
    )


def _changed(text: str, at: datetime) -> ShipmentChanged:
    return ShipmentChanged(
        tracking_number=text or "X",
        carrier="correios",
        old_status=Status.IN_TRANSIT,
        new_status=Status.DELIVERED,
        substatus="delivered",
        occurred_at=at,
        promised_date=date(2026, 11, 25),
        delivered_at=at,
    )


def _eta(text: str, at: datetime) -> EtaPredicted:
    return EtaPredicted(
        tracking_number=text or "X",
        expected_date=date(2026, 11, 24),
        promise_date=date(2026, 11, 26),
        lane=Lane(carrier="correios", service=text or None),
        model_version="v1",
        sample_size=12,
        predicted_at=at,
        milestone=Status.IN_TRANSIT,
        promise_quantile=0.9,
    )


@settings(max_examples=300, deadline=None)
@given(
    build=st.sampled_from([_normalized, _changed, _eta]),
    text=_text,
    at=_times,
    tenant=_tenants,
    source=_text.filter(bool),
    traceparent=st.none() | st.just("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
)
def test_the_bytes_are_the_envelope_s(
    build: object, text: str, at: datetime, tenant: str, source: str, traceparent: str | None
) -> None:
    payload: Payload = build(text, at)  # type: ignore[operator]
    kwargs = {"tenant_id": tenant, "source": source, "time": at, "traceparent": traceparent}
    encoded = encode_new_event(payload, event_id="01J0000000000000000000001", **kwargs)  # type: ignore[arg-type]
    envelope = new_event(payload, event_id="01J0000000000000000000001", **kwargs)  # type: ignore[arg-type]
    assert encoded.value == encode_event(envelope)
    assert encoded.key == envelope.subject.encode()
    assert encoded.topic == payload.topic
    assert list(zip(HEADER_NAMES, encoded.header_values, strict=True)) == headers_for(envelope)
    assert decode_event(encoded.value)[1] == payload


def test_a_new_id_and_the_current_time_when_none_are_given() -> None:
    before = datetime.now(UTC)
    first = encode_new_event(_changed("A", before), tenant_id="acme", source="/t")
    second = encode_new_event(_changed("A", before), tenant_id="acme", source="/t")
    assert first.id != second.id and len(first.id) == 26
    envelope, _ = decode_event(first.value)
    assert envelope.id == first.id and before <= envelope.time <= datetime.now(UTC)
