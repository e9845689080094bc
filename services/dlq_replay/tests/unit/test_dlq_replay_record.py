"""Building the record a replay sends back, and choosing which requested dead letters go."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rastro_dlq_replay.domain.dead_letter import Status
from rastro_dlq_replay.domain.replay import Skipped, SkipReason, build_replay, plan_replay
from rastro_dlq_replay.domain.stored import StoredDeadLetter
from rastro_kit.dead_letters import dead_letter_headers

pytestmark = pytest.mark.unit

ORIGINAL = [("content-type", b"application/cloudevents+json"), ("ce_id", b"E1"), ("x-null", None)]


def test_replay_is_the_original_record_with_replay_headers_instead_of_dlq_ones() -> None:
    stored = tuple(
        dead_letter_headers(
            ORIGINAL,  # type: ignore[arg-type]  # the kit types header values as bytes; Kafka allows null
            topic="rastro.tracking.raw.v1", partition=0, offset=5, group="normalization",
            reason="handler_error", message="boom",
        )
    )  # fmt: skip
    record = build_replay(
        service="normalization",
        key=b"acme/T1",
        value=b"\xff\x00raw",
        headers=stored,
        replay_id="01R",
        replayed_by="key_abc",
    )
    assert record.topic == "rastro.normalization.replay"
    assert (record.key, record.value) == (b"acme/T1", b"\xff\x00raw")
    assert record.headers == (*ORIGINAL, ("rastro-replay-id", b"01R"), ("rastro-replayed-by", b"key_abc"))


def test_a_second_replay_replaces_the_first_ones_markers_and_drops_retry_bookkeeping() -> None:
    stored = (
        ("ce_id", b"E1"),
        ("rastro-replay-id", b"01OLD"),
        ("rastro-replayed-by", b"someone"),
        ("rastro-retry-tier", b"3"),
        ("rastro-retry-not-before", b"1"),
        ("rastro-dlq-attempts", b"2"),
    )
    record = build_replay(
        service="eta", key=None, value=None, headers=stored, replay_id="01NEW", replayed_by="op"
    )
    assert record.topic == "rastro.eta.replay"
    assert record.headers == (("ce_id", b"E1"), ("rastro-replay-id", b"01NEW"), ("rastro-replayed-by", b"op"))


def stored(dead_letter_id: str, status: Status, service: str = "normalization") -> StoredDeadLetter:
    moment = datetime(2026, 11, 23, tzinfo=UTC)
    return StoredDeadLetter(
        id=dead_letter_id, service=service, reason="handler_error", error_message="", status=status,
        dlq_topic=f"rastro.{service}.dlq", dlq_partition=0, dlq_offset=0, original_topic="rastro.orders.v1",
        original_partition=0, original_offset=0, consumer_group=service, key=None, value=None, headers=(),
        tenant=None, subject=None, event_type=None, event_id=None, attempts=1, first_failed_at=moment,
        last_failed_at=moment, replay_count=0, stored_at=moment, purged_at=None, purged_by=None,
    )  # fmt: skip


def test_plan_takes_each_requested_id_once_and_skips_missing_purged_and_unroutable() -> None:
    found = {
        "A": stored("A", Status.NEW), "B": stored("B", Status.PURGED), "C": stored("C", Status.REPLAYED),
        "D": stored("D", Status.FAILED_AFTER_REPLAY), "E": stored("E", Status.NEW, service="nobody"),
    }  # fmt: skip
    plan = plan_replay(["A", "B", "X", "A", "C", "D", "E"], found)
    assert plan.replay == ("A", "C", "D")
    assert plan.skipped == (
        Skipped("B", SkipReason.PURGED),
        Skipped("X", SkipReason.NOT_FOUND),
        Skipped("E", SkipReason.UNKNOWN_SERVICE),
    )
