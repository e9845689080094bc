"""Reading what a scenario published: true end offsets, and a group-less tail that keeps matching records.

Tansu 0.6 answers ListOffsets(latest) with the *base offset of the last batch* + 1, not the high
watermark, so ``end_offsets`` alone undercounts whenever records were produced in batches. The high
watermark that comes back with a fetch is right; ``true_end_offsets`` reads the last batch to learn it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["Seen", "TopicTail", "true_end_offsets"]


async def true_end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], deadline_s: float = 15.0
) -> dict[TopicPartition, int]:
    """High watermarks of ``tps`` (assigned to ``consumer``); leaves their positions at those ends."""
    reported = await consumer.end_offsets(tps)
    ends = dict(reported)
    probe = [tp for tp in tps if reported[tp] > 0]
    for tp in probe:
        consumer.seek(tp, reported[tp] - 1)
    give_up = time.monotonic() + deadline_s
    while probe and time.monotonic() < give_up:
        await consumer.getmany(*probe, timeout_ms=200, max_records=20_000)
        still = []
        for tp in probe:
            high = consumer.highwater(tp)
            if high is None or await consumer.position(tp) < high:
                still.append(tp)
            else:
                ends[tp] = high
        probe = still
    if probe:
        raise RuntimeError(f"could not learn the end offsets of {probe}")
    for tp in tps:
        consumer.seek(tp, ends[tp])
    return ends


@dataclass(frozen=True)
class Seen:
    timestamp_ms: int
    key: bytes
    value: bytes


class TopicTail:
    """Follows one topic from its current end (no consumer group), keeping records whose key starts
    with ``key_prefix`` (the scenario's tenant)."""

    def __init__(self, bootstrap: str, topic: str, key_prefix: bytes) -> None:
        self.bootstrap, self.topic, self.key_prefix = bootstrap, topic, key_prefix
        self.seen: list[Seen] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        await consumer.topics()
        parts = sorted(consumer.partitions_for_topic(self.topic) or ())
        if not parts:
            await consumer.stop()
            raise RuntimeError(f"topic {self.topic} does not exist")
        tps = [TopicPartition(self.topic, p) for p in parts]
        consumer.assign(tps)
        await true_end_offsets(consumer, tps)
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def wait_for(self, count: int, timeout_s: float) -> list[Seen]:
        """Poll until ``count`` matching records were seen; lazily, to cost the measured process little."""
        assert self._consumer is not None
        give_up = time.monotonic() + timeout_s
        prefix = self.key_prefix
        while len(self.seen) < count:
            if time.monotonic() > give_up:
                raise TimeoutError(
                    f"{self.topic}: saw {len(self.seen)} of {count} records in {timeout_s:.0f} s"
                )
            batches = await self._consumer.getmany(timeout_ms=250, max_records=20_000)
            for records in batches.values():
                self.seen.extend(
                    Seen(r.timestamp, r.key, r.value)
                    for r in records
                    if r.key is not None and r.key.startswith(prefix)
                )
            await asyncio.sleep(0.05)
        return self.seen
