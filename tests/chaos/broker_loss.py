"""Checking a run across a broker that lost its records (the embedded Tansu keeps nothing on restart).

``rastro check`` reads the shipment changes back from ``rastro.shipments.v1`` (its check 4); after a
restart the broker holds only what was published since, so here a downstream reader, ``ShipmentsTap``,
reads the topic while the run goes on and again, from the start, on the new broker — as a real
downstream consumer would — and remembers which broker incarnation each change came from.

``pipeline_drained`` says when every row the outboxes held through the outage is published and
handled (what is missing then went down with the broker). ``check_after_broker_loss`` runs the
checker's checks 1–3 (right states, one timeline entry per distinct event; events neither handled nor
dead-lettered are returned for the caller to explain — ``dead_letters_taken_for_others``) and check 4
on the tapped changes:
within an incarnation every chain is contiguous and never goes backwards; a discontinuity is allowed
only where the incarnations meet — changes published to the old broker in its last moments that no
reader fetched before it died. Those are counted (``lost_changes``): the honest price of a broker
without durable storage.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from rastro_cli.checker import CheckReport, _check_states, _shipments, _wait_accounted, progress_rank
from rastro_events import ShipmentChanged, decode_event
from rastro_events.taxonomy import Status
from rastro_events.topics import ETA, ORDERS, SHIPMENTS, TRACKING_RAW
from rastro_kit.testing import wait_until
from tests.chaos.faults import group_lag
from tests.chaos.ledgers import outbox_rows

__all__ = [
    "BrokerLossReport",
    "ShipmentsTap",
    "TappedChange",
    "check_after_broker_loss",
    "dead_letters_taken_for_others",
    "pipeline_drained",
    "stored_dead_letters",
]

_DLQ_PATTERN = r"^rastro\.(?!dlq-replay\.).+\.dlq$"  # what dlq-replay reads (its settings' pattern)


@dataclass(frozen=True)
class TappedChange:
    event_id: str
    old: Status
    new: Status
    incarnation: int  # the broker's start (1, 2, …) the record was read from


@dataclass
class ShipmentsTap:
    """Reads ``rastro.shipments.v1`` from the beginning (no group); ``reconnect`` starts over on the
    restarted broker. A record published again after the restart (same event id) is kept once."""

    bootstrap: str
    incarnation: int = 1
    changes: dict[str, list[TappedChange]] = field(default_factory=dict)  # by record key
    _seen: set[str] = field(default_factory=set)
    _consumer: Any = None
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await self._task
            self._task = None

    async def reconnect(self) -> None:
        await self.stop()
        self.incarnation += 1
        self.start()

    async def caught_up(self) -> bool:
        """Read to the end of every partition, as the broker tells it now."""
        consumer = self._consumer
        if consumer is None or not consumer.assignment():
            return False
        parts = sorted(consumer.assignment())
        ends = await consumer.end_offsets(parts)
        return all([await consumer.position(tp) >= ends[tp] for tp in parts])

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=50
        )
        await consumer.start()
        try:
            parts: list[Any] = []
            while not parts and not self._stopping:
                await consumer.topics()
                found = consumer.partitions_for_topic(SHIPMENTS) or ()
                parts = [TopicPartition(SHIPMENTS, p) for p in sorted(found)]
                if not parts:
                    await asyncio.sleep(0.2)
            if not parts:
                return
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            self._consumer = consumer
            while not self._stopping:
                batch = await consumer.getmany(timeout_ms=100, max_records=5000)
                for records in batch.values():
                    for record in records:
                        self._keep(record)
        finally:
            self._consumer = None
            await consumer.stop()

    def _keep(self, record: Any) -> None:
        envelope, payload = decode_event(record.value)
        assert isinstance(payload, ShipmentChanged)
        if envelope.id in self._seen:
            return
        self._seen.add(envelope.id)
        change = TappedChange(
            envelope.id,
            Status(payload.old_status or Status.PENDING),
            Status(payload.new_status),
            self.incarnation,
        )
        self.changes.setdefault(record.key.decode(), []).append(change)


@dataclass
class BrokerLossReport:
    report: CheckReport
    lost_changes: int = 0  # shipments whose chain breaks where the incarnations meet
    unaccounted: set[str] = field(
        default_factory=set
    )  # neither handled nor dead-lettered: judged by the caller


async def check_after_broker_loss(
    manifest: Sequence[dict[str, Any]], database_url: str, tap: ShipmentsTap, *, timeout: float = 120.0
) -> BrokerLossReport:
    report = CheckReport(shipments=len(manifest))
    sent = {i for line in manifest for i in line["event_ids"]}
    report.events_in = len(sent)
    conn = await asyncpg.connect(database_url)
    try:
        handled, dead = await _wait_accounted(
            conn, sent, timeout, "normalization", "dlq_replay", "normalization"
        )
        report.handled, report.dead_lettered = len(handled), len(dead)
        if handled & dead:
            report.violations.append(f"{len(handled & dead)} events both handled and dead-lettered")
        stored = await _shipments(conn, manifest, "normalization")
        # Every change is published (normalization's outbox is empty) and the tap has read it all.
        deadline = time.monotonic() + timeout
        await wait_until(
            lambda: _outbox_empty(conn), timeout=timeout, interval=0.2, message="normalization outbox empty"
        )
        await wait_until(
            tap.caught_up, timeout=max(deadline - time.monotonic(), 1), interval=0.2, message="tap caught up"
        )
    finally:
        await conn.close()
    _check_states(manifest, stored, report)
    found = BrokerLossReport(report, unaccounted=sent - handled - dead)
    for line in manifest:
        shipment = (line["tenant"], line["tracking_number"])
        if line["expected_status"] is None or shipment not in stored:
            continue
        chain = tap.changes.get(f"{shipment[0]}/{shipment[1]}", [])
        report.state_changes += len(chain)
        found.lost_changes += _check_chain(
            f"{shipment[0]}/{shipment[1]}", chain, stored[shipment]["status"], report
        )
    return found


def _check_chain(where: str, chain: list[TappedChange], stored: str, report: CheckReport) -> int:
    """Violations into ``report``; returns 1 if the chain breaks where the incarnations meet, else 0."""
    previous, incarnation, floor, broken = Status.PENDING, 1, 0, 0
    for change in chain:
        if change.old != previous:
            if change.incarnation > incarnation:
                broken = 1  # its predecessors went down with the old broker before anyone read them
            else:
                report.violations.append(f"{where}: change {change.old}→{change.new} after {previous}")
        rank = progress_rank(change.new)
        if rank is not None:
            if rank < floor:
                report.violations.append(f"{where}: went backwards to {change.new}")
            floor = max(floor, rank)
        previous, incarnation = change.new, change.incarnation
    if previous != stored:
        if incarnation == 1:  # the tail was published to the old broker, never read
            broken = 1
        else:
            report.violations.append(f"{where}: changes end at {previous}, stored {stored}")
    return broken


async def pipeline_drained(database_url: str, bootstrap: str) -> bool:
    """Ingest's and normalization's outboxes are empty, and normalization and dlq-replay have handled
    everything on their topics."""
    if await outbox_rows(database_url, "ingest", "normalization"):
        return False
    lags = await asyncio.gather(
        group_lag(bootstrap, "normalization", "normalization", (TRACKING_RAW, ORDERS, ETA)),
        group_lag(bootstrap, "dlq-replay", "dlq-replay", pattern=_DLQ_PATTERN),
    )
    return not any(lags)


def dead_letters_taken_for_others(
    stored: dict[tuple[str, int, int], str], log_path: Path, since: int
) -> set[str]:
    """Event ids dlq-replay logged as ``dead_letter_already_stored`` since byte ``since`` of its log
    while the dead letter stored at that original position (``stored``: (topic, partition, offset) ->
    event id) is another event's: a position the restarted broker handed out again."""
    with log_path.open("rb") as log:
        log.seek(since)
        lines = log.read().decode(errors="replace").splitlines()
    taken: set[str] = set()
    for line in lines:
        if '"dead_letter_already_stored"' not in line:
            continue
        entry = json.loads(line)
        position = (entry["original_topic"], entry["original_partition"], entry["original_offset"])
        if entry.get("event_id") and stored.get(position) not in (None, entry["event_id"]):
            taken.add(entry["event_id"])
    return taken


async def stored_dead_letters(database_url: str) -> dict[tuple[str, int, int], str]:
    """normalization's dead letters by original position: (topic, partition, offset) -> event id."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT original_topic, original_partition, original_offset, event_id"
            " FROM dlq_replay.dead_letters WHERE service = 'normalization'"
        )
    finally:
        await conn.close()
    return {(r[0], r[1], r[2]): r[3] for r in rows}


async def _outbox_empty(conn: Any) -> bool:
    return not await conn.fetchval("SELECT count(*) FROM normalization.outbox")
