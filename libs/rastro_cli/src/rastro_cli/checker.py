"""``rastro check``: prove, after a load or chaos run, that nothing was lost or applied twice.

Reads the manifest ``rastro loadgen`` wrote and looks at what the services hold — the normalization
service's inbox and shipments, the dead-letter store — and at ``rastro.shipments.v1``:

1. **Accounted for**: every event id that was sent is in normalization's inbox (handled) or stored as a
   dead letter, never both and never neither: ``in == out + DLQ``, exact counts.
2. **Right state**: every shipment is in the status its lifecycle implies; a poison shipment has none.
3. **Applied once**: every shipment's timeline has exactly one entry per distinct event of its
   lifecycle (client retries and carrier repeats collapsed).
4. **Never backwards**: the shipment's changes on ``rastro.shipments.v1`` (a record published twice by
   the at-least-once relay counted once, by event id) form one chain from
   ``pending`` to the stored status, and the progress rank along it never decreases (the delivery
   stage — out for delivery, failed attempt, awaiting pickup — counts as one rank; exceptions and
   expiry are side states, outside the ranking).
5. **One body per webhook-id** (when deliveries are given): a subscriber never received two different
   messages under the same ``webhook-id``.

The first check is waited for (with a deadline): the pipeline drains asynchronously.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from rastro_events import decode_event
from rastro_events.taxonomy import RANK, Status
from rastro_events.topics import SHIPMENTS

__all__ = ["CheckReport", "check_run", "check_webhooks", "progress_rank"]

_DELIVERY_STAGE = {Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT, Status.AVAILABLE_FOR_PICKUP}
_SIDE = {Status.EXCEPTION, Status.EXPIRED}


def progress_rank(status: Status) -> int | None:
    """Rank for the never-backwards check; None for side states."""
    if status in _SIDE:
        return None
    if status in _DELIVERY_STAGE:
        return min(RANK[s] for s in _DELIVERY_STAGE)
    return RANK[status]


@dataclass
class CheckReport:
    shipments: int = 0
    events_in: int = 0
    handled: int = 0
    dead_lettered: int = 0
    state_changes: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.violations)} violation(s)"
        return (
            f"{verdict}: {self.shipments} shipments, {self.events_in} events in = {self.handled} handled"
            f" + {self.dead_lettered} dead-lettered; {self.state_changes} state changes checked"
        )


async def check_run(
    manifest: Sequence[dict[str, Any]],
    database_url: str,
    bootstrap: str,
    *,
    timeout: float = 120.0,
    normalization_schema: str = "normalization",
    dlq_schema: str = "dlq_replay",
    group: str = "normalization",
) -> CheckReport:
    report = CheckReport(shipments=len(manifest))
    sent = {i for line in manifest for i in line["event_ids"]}
    report.events_in = len(sent)
    conn = await asyncpg.connect(database_url)
    try:
        handled, dead = await _wait_accounted(conn, sent, timeout, normalization_schema, dlq_schema, group)
        report.handled, report.dead_lettered = len(handled), len(dead)
        both = handled & dead
        neither = sent - handled - dead
        if both:
            report.violations.append(f"{len(both)} events both handled and dead-lettered, e.g. {min(both)}")
        if neither:
            report.violations.append(
                f"{len(neither)} events lost (neither handled nor dead), e.g. {min(neither)}"
            )
        stored = await _shipments(conn, manifest, normalization_schema)
    finally:
        await conn.close()
    _check_states(manifest, stored, report)
    changes = await _read_changes(bootstrap, manifest, stored, deadline=time.monotonic() + timeout)
    _check_chains(manifest, stored, changes, report)
    return report


def check_webhooks(deliveries: Iterable[tuple[str, bytes]], report: CheckReport) -> None:
    """``deliveries``: (webhook-id, body) of every message a subscriber accepted."""
    bodies: dict[str, set[str]] = defaultdict(set)
    for message_id, body in deliveries:
        bodies[message_id].add(hashlib.sha256(body).hexdigest())
    for message_id, digests in bodies.items():
        if len(digests) > 1:
            report.violations.append(
                f"webhook-id {message_id} delivered with {len(digests)} different bodies"
            )


async def _wait_accounted(
    conn: Any, sent: set[str], timeout: float, norm: str, dlq: str, group: str
) -> tuple[set[str], set[str]]:
    ids = sorted(sent)
    give_up = time.monotonic() + timeout
    while True:
        handled = {
            r[0]
            for r in await conn.fetch(
                f"SELECT event_id FROM {norm}.inbox WHERE consumer_group = $1 AND event_id = ANY($2)",
                group,
                ids,
            )
        }
        # A dead letter replayed and then handled counts as handled (it is in the inbox).
        dead = {
            r[0]
            for r in await conn.fetch(
                f"SELECT DISTINCT event_id FROM {dlq}.dead_letters WHERE service = 'normalization'"
                " AND status <> 'purged' AND event_id = ANY($1)",
                ids,
            )
        } - handled
        if len(handled) + len(dead) >= len(sent) or time.monotonic() > give_up:
            return handled, dead
        await asyncio.sleep(0.5)


async def _shipments(conn: Any, manifest: Sequence[dict[str, Any]], norm: str) -> dict[tuple[str, str], Any]:
    tenants = sorted({line["tenant"] for line in manifest})
    rows = await conn.fetch(
        f"SELECT s.tenant_id, s.tracking_number, s.status,"
        f" (SELECT count(*) FROM {norm}.timeline_entries t WHERE t.tenant_id = s.tenant_id"
        f"  AND t.tracking_number = s.tracking_number) AS entries"
        f" FROM {norm}.shipments s WHERE s.tenant_id = ANY($1)",
        tenants,
    )
    return {(r["tenant_id"], r["tracking_number"]): r for r in rows}


def _check_states(
    manifest: Sequence[dict[str, Any]], stored: dict[tuple[str, str], Any], report: CheckReport
) -> None:
    for line in manifest:
        row = stored.get((line["tenant"], line["tracking_number"]))
        expected = line["expected_status"]
        where = f"{line['tenant']}/{line['tracking_number']} ({line['kind']})"
        if expected is None:
            if row is not None and row["entries"]:
                report.violations.append(f"{where}: poison events reached the timeline")
            continue
        if row is None:
            report.violations.append(f"{where}: no shipment")
            continue
        if row["status"] != expected:
            report.violations.append(f"{where}: status {row['status']}, expected {expected}")
        if row["entries"] != line["distinct_events"]:
            report.violations.append(
                f"{where}: {row['entries']} timeline entries, expected {line['distinct_events']}"
            )


async def _read_changes(
    bootstrap: str, manifest: Sequence[dict[str, Any]], stored: dict[tuple[str, str], Any], deadline: float
) -> dict[tuple[str, str], list[tuple[Status, Status]]]:
    """Every change of the manifest's shipments, read until each chain reaches the stored status."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    wanted = {
        (line["tenant"], line["tracking_number"])
        for line in manifest
        if (line["tenant"], line["tracking_number"]) in stored
    }
    keys = {f"{t}/{n}".encode(): (t, n) for t, n in wanted}
    changes: dict[tuple[str, str], list[tuple[Status, Status]]] = defaultdict(list)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(SHIPMENTS, p) for p in sorted(consumer.partitions_for_topic(SHIPMENTS) or ())]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        done: set[tuple[str, str]] = set()
        seen: set[str] = set()
        while time.monotonic() < deadline and len(done) < len(wanted):
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                for record in records:
                    shipment = keys.get(record.key)
                    if shipment is None:
                        continue
                    envelope, payload = decode_event(record.value)
                    if envelope.id in seen:
                        continue  # the relay publishes at least once: a consumer's inbox drops repeats
                    seen.add(envelope.id)
                    changes[shipment].append((Status(payload.old_status), Status(payload.new_status)))
                    if payload.new_status == stored[shipment]["status"]:
                        done.add(shipment)
    finally:
        await consumer.stop()
    return changes


def _check_chains(
    manifest: Sequence[dict[str, Any]],
    stored: dict[tuple[str, str], Any],
    changes: dict[tuple[str, str], list[tuple[Status, Status]]],
    report: CheckReport,
) -> None:
    for line in manifest:
        shipment = (line["tenant"], line["tracking_number"])
        if shipment not in stored or line["expected_status"] is None:
            continue
        chain = changes.get(shipment, [])
        report.state_changes += len(chain)
        where = f"{shipment[0]}/{shipment[1]}"
        if not chain:
            report.violations.append(f"{where}: no state change on {SHIPMENTS}")
            continue
        previous = Status.PENDING
        floor = 0
        for old, new in chain:
            if old != previous:
                report.violations.append(f"{where}: change {old}→{new} after {previous} (a gap or a repeat)")
            rank = progress_rank(new)
            if rank is not None:
                if rank < floor:
                    report.violations.append(f"{where}: went backwards to {new}")
                floor = max(floor, rank)
            previous = new
        if previous != stored[shipment]["status"]:
            report.violations.append(
                f"{where}: changes end at {previous}, stored {stored[shipment]['status']}"
            )
