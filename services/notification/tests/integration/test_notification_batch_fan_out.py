"""The batch handler queues exactly the messages the per-record handlers queue, in the same order, with
far fewer statements: one read of the subscriptions, one insert and one NOTIFY per batch."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from rastro_events import EtaPredicted, Lane, Location, NormalizedTrackingEvent, Payload, Status, new_event
from rastro_kit.consumer import HandlerContext
from rastro_notification.batch_fan_out import handle_batch
from rastro_notification.handlers import on_eta_predicted, on_tracking_normalized

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _tracking(tn: str, status: Status, carrier: str, minutes: int) -> NormalizedTrackingEvent:
    at = T0 + timedelta(minutes=minutes)
    return NormalizedTrackingEvent(
        tracking_number=tn, carrier=carrier, status_code="X", status=status, substatus=status.value,
        description="d", descriptions={"en": "d"}, occurred_at=at, occurred_at_utc=at,
        location=Location(city="Recife", state="PE", country="BR"), raw_event_id=f"raw-{tn}-{minutes}",
    )  # fmt: skip


def _eta(tn: str) -> EtaPredicted:
    return EtaPredicted(
        tracking_number=tn, expected_date=date(2026, 11, 25), promise_date=date(2026, 11, 27),
        lane=Lane(carrier="jadlog"), model_version="v1", sample_size=3, predicted_at=T0,
        milestone=Status.IN_TRANSIT,
    )  # fmt: skip


def _contexts(conn: Any, events: list[tuple[str, Payload]]) -> list[HandlerContext]:
    out = []
    for i, (tenant, payload) in enumerate(events):
        envelope = new_event(payload, tenant_id=tenant, source="/test", time=T0, event_id=f"ev{i}")
        out.append(HandlerContext(conn, "notification", None, envelope, payload))  # type: ignore[arg-type]
    return out


async def _queued(conn: Any) -> list[tuple[Any, ...]]:
    rows = await conn.fetch(
        "SELECT subscription_id, tenant_id, event_id, event_type, ordering_key, body"
        " FROM messages ORDER BY seq"
    )
    return [tuple(r) for r in rows]


async def test_a_batch_queues_what_the_handlers_queue_one_by_one(pool: tuple[Any, str]) -> None:
    db, _ = pool
    subscriptions = [
        ("sub_a_all", "acme", ["*"], None),
        ("sub_a_delivered", "acme", ["tracking.delivered"], None),
        ("sub_a_correios", "acme", ["tracking.*"], ["correios"]),
        ("sub_b_eta", "beta", ["eta.*"], None),
        ("sub_b_off", "beta", ["*"], None),
    ]
    for sub_id, tenant, types, carriers in subscriptions:
        await db.execute(
            "INSERT INTO subscriptions (id, tenant_id, url, event_types, secret, enabled) VALUES"
            " ($1, $2, 'https://example.com/h', $3, 'whsec_x', $4)",
            sub_id, tenant, types, sub_id != "sub_b_off",
        )  # fmt: skip
        if carriers:
            await db.execute("UPDATE subscriptions SET carriers = $2 WHERE id = $1", sub_id, carriers)
    events: list[tuple[str, Payload]] = [
        ("acme", _tracking("AA1BR", Status.IN_TRANSIT, "correios", 1)),
        ("beta", _tracking("BB1", Status.IN_TRANSIT, "jadlog", 2)),
        ("acme", _tracking("AA2", Status.DELIVERED, "jadlog", 3)),
        ("beta", _eta("BB1")),
        ("acme", _tracking("AA1BR", Status.DELIVERED, "correios", 4)),
        ("gamma", _tracking("CC1", Status.DELIVERED, "correios", 5)),  # no subscriptions at all
    ]
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await handle_batch(conn, _contexts(conn, events))
        batched = await _queued(conn)
        await tx.rollback()
        tx = conn.transaction()
        await tx.start()
        for ctx in _contexts(conn, events):
            assert ctx.envelope is not None
            handler = on_eta_predicted if isinstance(ctx.payload, EtaPredicted) else on_tracking_normalized
            await handler(ctx, ctx.envelope, ctx.payload)
        one_by_one = await _queued(conn)
        await tx.rollback()
    assert batched == one_by_one
    assert [(r[0], r[3]) for r in batched] == [
        ("sub_a_all", "tracking.in_transit"),
        ("sub_a_correios", "tracking.in_transit"),
        ("sub_a_all", "tracking.delivered"),
        ("sub_a_delivered", "tracking.delivered"),
        ("sub_b_eta", "eta.updated"),
        ("sub_a_all", "tracking.delivered"),
        ("sub_a_correios", "tracking.delivered"),
        ("sub_a_delivered", "tracking.delivered"),
    ]
