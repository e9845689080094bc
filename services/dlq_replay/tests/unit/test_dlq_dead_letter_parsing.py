"""Parsing a DLQ record into what the store keeps about it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from rastro_dlq_replay.domain.dead_letter import DlqRecord, parse_dead_letter, tenant_of_key
from rastro_kit.dead_letters import dead_letter_headers

pytestmark = pytest.mark.unit

ENVELOPE = {
    "specversion": "1.0",
    "id": "01JD5Z8Q3T6W0K2N9V7R4B1C8E",
    "source": "/rastro/ingest",
    "type": "rastro.tracking.raw.v1",
    "subject": "acme/BR123",
    "time": "2026-11-23T14:05:11-03:00",
    "tenantid": "acme",
    "data": {"carrier": 1},
}


def failed(
    value: bytes | None,
    key: bytes | None = b"acme/BR123",
    headers: Sequence[tuple[str, bytes]] = (),
    **kw: object,
) -> DlqRecord:
    dlq_headers = dead_letter_headers(
        headers,
        topic="rastro.tracking.raw.v1",
        partition=4,
        offset=1234,
        group="normalization",
        reason=str(kw.get("reason", "schema_violation")),
        message="data.carrier: Input should be a string",
    )
    return DlqRecord(
        topic="rastro.normalization.dlq",
        partition=1,
        offset=77,
        timestamp_ms=1_800_000_000_000,
        key=key,
        value=value,
        headers=tuple(dlq_headers),
    )


def test_failure_comes_from_the_dlq_headers() -> None:
    letter = parse_dead_letter(failed(json.dumps(ENVELOPE).encode()))
    assert letter.service == "normalization"
    assert letter.reason == "schema_violation"
    assert letter.error_message == "data.carrier: Input should be a string"
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        "rastro.tracking.raw.v1",
        4,
        1234,
    )
    assert letter.consumer_group == "normalization"
    assert letter.attempts == 1
    assert letter.first_failed_at.tzinfo is not None
    assert letter.first_failed_at <= letter.last_failed_at
    assert letter.replay_id is None


def test_who_it_concerns_comes_from_the_cloudevent() -> None:
    letter = parse_dead_letter(failed(json.dumps(ENVELOPE).encode(), key=b"other/BR123"))
    assert letter.tenant == "acme"  # the body is authoritative over the key
    assert letter.subject == "acme/BR123"
    assert letter.event_type == "rastro.tracking.raw.v1"
    assert letter.event_id == "01JD5Z8Q3T6W0K2N9V7R4B1C8E"


@pytest.mark.parametrize(
    "value", [b"{not json", b"\xff\xfe{broken", b"[1, 2]", None, b'{"tenantid": "Not Valid!"}']
)
def test_without_a_usable_cloudevent_the_tenant_comes_from_the_key(value: bytes | None) -> None:
    letter = parse_dead_letter(failed(value, key=b"acme/BR123", headers=[("ce_type", b"rastro.x.v1")]))
    assert letter.tenant == "acme"
    assert letter.subject == "acme/BR123"
    assert letter.event_type == "rastro.x.v1"  # the routing header stands in for the body
    assert letter.event_id is None


@pytest.mark.parametrize(
    ("key", "tenant"),
    [
        (b"acme/BR1", "acme"),
        (b"acme/with/slashes", "acme"),
        (b"no-slash", None),
        (None, None),
        (b"\xff/x", None),
        (b"UPPER/x", None),
        (b"/x", None),
    ],
)
def test_tenant_of_key(key: bytes | None, tenant: str | None) -> None:
    assert tenant_of_key(key) == tenant


def test_a_record_without_dlq_headers_still_parses() -> None:
    record = DlqRecord(
        topic="rastro.eta.dlq",
        partition=2,
        offset=9,
        timestamp_ms=1_800_000_000_000,
        key=None,
        value=None,
        headers=(("rastro-dlq-attempts", b"many"), ("x-null", None)),
    )
    letter = parse_dead_letter(record)
    assert letter.service == "eta"
    assert letter.reason == "unknown"
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        "rastro.eta.dlq",
        2,
        9,
    )
    assert letter.attempts == 1
    assert letter.first_failed_at == letter.last_failed_at == datetime.fromtimestamp(1_800_000_000, UTC)
    assert letter.tenant is None


def test_a_failed_replay_carries_its_replay_id_and_keeps_its_own_origin() -> None:
    replayed = [
        ("content-type", b"application/cloudevents+json"),
        ("rastro-replay-id", b"01REPLAY"),
        ("rastro-replayed-by", b"operator"),
    ]
    letter = parse_dead_letter(failed(json.dumps(ENVELOPE).encode(), headers=replayed))
    assert letter.replay_id == "01REPLAY"


def test_naive_timestamps_are_utc_and_garbage_falls_back() -> None:
    headers = (
        ("rastro-dlq-first-failed-at", b"2026-01-02T03:04:05"),
        ("rastro-dlq-last-failed-at", b"yesterday"),
    )
    record = DlqRecord(
        topic="rastro.ingest.dlq",
        partition=0,
        offset=0,
        timestamp_ms=1_800_000_000_000,
        key=None,
        value=None,
        headers=headers,
    )
    letter = parse_dead_letter(record)
    assert letter.first_failed_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert letter.last_failed_at == datetime.fromtimestamp(1_800_000_000, UTC)


def test_nul_characters_never_reach_text_columns() -> None:
    envelope = {**ENVELOPE, "subject": "acme/\u0000BR", "type": "rastro.\u0000"}
    record = failed(json.dumps(envelope).encode(), key=b"acme/\x00\xff", headers=[("ce_id", b"\x00")])
    record = DlqRecord(
        **{**record.__dict__, "headers": (*record.headers, ("rastro-dlq-error-message", b"a\x00b"))}
    )
    letter = parse_dead_letter(record)
    texts = [letter.subject, letter.event_type, letter.error_message, letter.key_text]
    assert all(t is not None and "\x00" not in t for t in texts), texts
    assert (
        letter.error_message == "a\ufffdb" and letter.record.key == b"acme/\x00\xff"
    )  # the bytes stay as they are


def test_out_of_range_numbers_and_deep_json_fall_back_instead_of_failing() -> None:
    headers = (("rastro-dlq-original-partition", b"99999999999"), ("rastro-dlq-original-offset", b"-1"),
               ("rastro-dlq-attempts", b"1" * 30))  # fmt: skip
    record = DlqRecord(topic="rastro.eta.dlq", partition=2, offset=9, timestamp_ms=2**62,
                       key=b"acme/T", value=b"[" * 100_000, headers=headers)  # fmt: skip
    letter = parse_dead_letter(record)
    assert (letter.original_partition, letter.original_offset, letter.attempts) == (2, 9, 1)
    assert letter.tenant == "acme" and letter.last_failed_at == datetime.fromtimestamp(0, UTC)
