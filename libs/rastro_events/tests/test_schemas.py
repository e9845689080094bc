from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rastro_events import (
    InvalidJson,
    RawTrackingEvent,
    SchemaViolation,
    UnsupportedType,
    decode_event,
    encode_event,
    new_event,
    new_event_id,
)
from rastro_events.schema_export import render_all

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


def test_committed_schemas_match_the_models() -> None:
    drift = [
        rel
        for rel, content in render_all().items()
        if not (ROOT / "schemas" / rel).exists()
        or (ROOT / "schemas" / rel).read_text(encoding="utf-8") != content
    ]
    assert not drift, f"schemas/ drift from the models, run `make schemas`: {drift}"


def test_round_trip_keeps_offset_and_key() -> None:
    payload = RawTrackingEvent(
        tracking_number="AA1BR",
        carrier="correios",
        status_code="PO-01",
        occurred_at=datetime.fromisoformat("2026-11-23T14:05:11-03:00"),
    )
    envelope = new_event(payload, tenant_id="acme", source="/t")
    decoded, again = decode_event(encode_event(envelope))
    assert decoded == envelope and again == payload
    assert decoded.subject == "acme/AA1BR"
    assert again.occurred_at.utcoffset().total_seconds() == -3 * 3600  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (b"{", InvalidJson),
        (b"\xff\xfe", InvalidJson),
        (None, InvalidJson),
        (b"[1]", SchemaViolation),
        (b'{"specversion":"1.0"}', SchemaViolation),
    ],
)
def test_decode_errors_name_their_reason(value: bytes | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_event(value)


def test_unknown_type_and_missing_offset() -> None:
    base = new_event(
        RawTrackingEvent(tracking_number="A", status_code="X", occurred_at=datetime.now(UTC)),
        tenant_id="acme",
        source="/t",
    )
    with pytest.raises(UnsupportedType):
        decode_event(encode_event(base.model_copy(update={"type": "rastro.tracking.raw.v2"})))
    naive = base.model_copy(update={"data": {**base.data, "occurred_at": "2026-11-23T14:05:11"}})
    with pytest.raises(SchemaViolation, match="occurred_at"):
        decode_event(encode_event(naive))


def test_event_ids_sort_by_time_and_are_unique() -> None:
    ids = [new_event_id() for _ in range(1000)]
    assert len(set(ids)) == 1000 and all(len(i) == 26 for i in ids)
    assert ids == sorted(ids)  # within one millisecond too: the random part counts up
