"""Consumer lag per partition and the outbox backlog, re-read from the broker and Postgres (DESIGN §9).

Every ``RASTRO_METRICS_REFRESH_S`` the service's ``BacklogMonitor`` asks the broker, for each of its
consumer groups, what the group has committed and where each partition ends, and exports the
difference as ``rastro_consumer_lag{service,topic,partition}``. It is never guessed from what this
instance fetched: it covers partitions assigned to other instances, and keeps growing while the group
is down. It also counts the unpublished outbox rows (``rastro_outbox_pending{service}``), so a relay
that is stuck (broker unreachable) still shows its backlog.

Where a partition ends is the high watermark of a Fetch, not a ListOffsets answer: the embedded Tansu
answers ListOffsets with the last batch's *base* offset + 1 (1 after one batch of 7 records). Its answer
is always inside the log, though, so a Fetch from there (``min_bytes`` 0, a 10 ms wait: Tansu answers a
Fetch with no wait at all with no partitions) carries the true high watermark and log start on every
broker.

Nothing here can stop the service: a failed round is logged once per kind of failure (until that part
works again), the gauges keep their last good value, and the Kafka clients are rebuilt next round.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.protocol.offset import OffsetRequest

from rastro_kit.kafka import client_options, make_admin
from rastro_kit.logs import get_logger
from rastro_kit.metrics import CONSUMER_LAG, OUTBOX_PENDING
from rastro_kit.settings import KitSettings

__all__ = [
    "BacklogMonitor",
    "PartitionEnd",
    "WatchedGroup",
    "count_outbox",
    "group_partitions",
    "partition_lag",
]

log = get_logger(__name__)
_LATEST = -1  # ListOffsets timestamp meaning "the end of the log"
_FETCH_WAIT_MS = 10
_OUTBOX_EXACT_UP_TO = 100_000  # above this, count(*) costs more than it tells: use the planner's estimate


@dataclass(frozen=True)
class WatchedGroup:
    """A consumer group of the service: its topics, or the pattern it subscribes with."""

    group_id: str
    topics: tuple[str, ...] = ()
    pattern: str | None = None


@dataclass(frozen=True)
class PartitionEnd:
    high_watermark: int
    log_start: int


def partition_lag(end: PartitionEnd, committed: int | None) -> int:
    """Records the group has still to handle on a partition. With no commit (or one below the log start,
    removed by retention) the group starts from the log start, as ``auto_offset_reset=earliest`` does."""
    start = end.log_start if committed is None or committed < end.log_start else committed
    return max(end.high_watermark - start, 0)


def group_partitions(
    group: WatchedGroup, service: str, partitions_by_topic: Mapping[str, Iterable[int]]
) -> list[TopicPartition]:
    """The partitions of ``group``: its topics or pattern, plus the service's own retry tiers and replay
    topic (which every consumer runner of the service subscribes to), as far as the broker has them."""
    own = re.compile(rf"^rastro\.{re.escape(service)}\.(?:retry\.\d+|replay)$")
    pattern = re.compile(group.pattern) if group.pattern else None
    found: list[TopicPartition] = []
    for topic in sorted(partitions_by_topic):
        if topic in group.topics or own.match(topic) or (pattern is not None and pattern.match(topic)):
            found.extend(TopicPartition(topic, p) for p in sorted(partitions_by_topic[topic]))
    return found


async def count_outbox(conn: Any) -> int:
    """Unpublished outbox rows: exact up to 100,000, the planner's estimate beyond (never less)."""
    exact = int(
        await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM outbox LIMIT $1) AS capped", _OUTBOX_EXACT_UP_TO
        )
    )
    if exact < _OUTBOX_EXACT_UP_TO:
        return exact
    estimate = await conn.fetchval("SELECT reltuples::bigint FROM pg_class WHERE oid = 'outbox'::regclass")
    return max(exact, int(estimate or 0))


class _Broker:
    """The two Kafka clients the monitor needs: a bare client for metadata, ListOffsets and Fetch, and
    the admin client for committed offsets."""

    def __init__(self, settings: KitSettings) -> None:
        self._client = AIOKafkaClient(**client_options(settings))
        self._admin: AIOKafkaAdminClient = make_admin(settings)

    async def start(self) -> None:
        await self._client.bootstrap()
        await self._admin.start()

    async def close(self) -> None:
        await asyncio.gather(self._client.close(), self._admin.close(), return_exceptions=True)

    async def partitions(self) -> dict[str, set[int]]:
        if not await self._client.force_metadata_update():
            raise KafkaError("no metadata from any broker")
        cluster = self._client.cluster
        return {t: set(cluster.partitions_for_topic(t) or ()) for t in cluster.topics()}

    async def committed(self, group_id: str, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        # Partitions named explicitly: Tansu cannot answer the "every partition" form of OffsetFetch.
        offsets = await self._admin.list_consumer_group_offsets(group_id, partitions=list(tps))
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def ends(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, PartitionEnd]:
        by_leader: dict[int, list[TopicPartition]] = defaultdict(list)
        for tp in tps:
            leader = self._client.cluster.leader_for_partition(tp)
            if leader is not None and leader >= 0:
                by_leader[leader].append(tp)
        found: dict[TopicPartition, PartitionEnd] = {}
        for answer in await asyncio.gather(*(self._ends_on(node, part) for node, part in by_leader.items())):
            found.update(answer)
        return found

    async def _ends_on(self, node: int, tps: list[TopicPartition]) -> dict[TopicPartition, PartitionEnd]:
        listed = await self._client.send(
            node, OffsetRequest(-1, 0, _by_topic((tp, (_LATEST,)) for tp in tps))
        )
        inside: dict[TopicPartition, int] = {}
        for topic, parts in listed.topics:
            for partition, error, *rest in parts:
                if error == 0:  # v0: ([offsets]); v1+: (timestamp, offset[, leader epoch])
                    offset = (rest[0] or [0])[0] if listed.API_VERSION == 0 else rest[1]
                    inside[TopicPartition(topic, partition)] = max(int(offset), 0)
        if not inside:
            return {}
        rows = _by_topic((tp, (offset, 1)) for tp, offset in inside.items())  # 1 byte: one batch at most
        fetched = await self._client.send(node, FetchRequest(_FETCH_WAIT_MS, 0, 1, 0, rows))
        ends: dict[TopicPartition, PartitionEnd] = {}
        for topic, parts in fetched.topics:
            for part in parts:  # (partition, error, high watermark, ...; v5+: last stable, log start, ...)
                partition, error, high = part[0], part[1], part[2]
                if error == 0 and high >= 0:
                    log_start = part[4] if fetched.API_VERSION >= 5 and part[4] >= 0 else 0
                    ends[TopicPartition(topic, partition)] = PartitionEnd(high, log_start)
        return ends


def _by_topic(rows: Iterable[tuple[TopicPartition, tuple[int, ...]]]) -> list[tuple[str, list[Any]]]:
    """``(tp, fields)`` rows as the protocol's ``[(topic, [(partition, *fields)])]``."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for tp, fields in rows:
        grouped[tp.topic].append((tp.partition, *fields))
    return list(grouped.items())


def _layout_keys(layout: Mapping[str, Iterable[int]]) -> set[tuple[str, str]]:
    return {(topic, str(p)) for topic, partitions in layout.items() for p in partitions}


class BacklogMonitor:
    """The background task that keeps ``rastro_consumer_lag`` and ``rastro_outbox_pending`` current."""

    def __init__(
        self,
        settings: KitSettings,
        groups: Sequence[WatchedGroup],
        pool: Any = None,
        *,
        interval_s: float | None = None,
    ) -> None:
        self._settings, self._groups, self._pool = settings, tuple(groups), pool
        self.service = settings.service_name
        self.interval_s = interval_s if interval_s is not None else settings.metrics_refresh_s
        self._broker: _Broker | None = None
        self._exported: set[tuple[str, str]] = set()
        self._warned: dict[str, set[str]] = defaultdict(set)
        self.rounds = 0

    async def run(self) -> None:
        try:
            while True:
                await self.refresh()
                await asyncio.sleep(self.interval_s)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the Kafka clients (``run`` does on its way out; the next round would reopen them)."""
        await self._drop_broker()

    async def refresh(self) -> None:
        """One round; never raises (a failure is logged once and the last good values stay)."""
        if self._groups:
            await self._guarded("consumer_lag", self._refresh_lag)
        if self._pool is not None:
            await self._guarded("outbox_pending", self._refresh_outbox)
        self.rounds += 1

    async def _refresh_lag(self) -> None:
        if self._broker is None:
            broker = _Broker(self._settings)
            try:
                await broker.start()
            except BaseException:
                await broker.close()
                raise
            self._broker = broker
        layout = await self._broker.partitions()
        lags: dict[tuple[str, str], int] = {}
        for group in self._groups:
            tps = group_partitions(group, self.service, layout)
            if not tps:
                continue
            committed = await self._broker.committed(group.group_id, tps)
            for tp, end in (await self._broker.ends(tps)).items():
                key = (tp.topic, str(tp.partition))
                lags[key] = max(lags.get(key, 0), partition_lag(end, committed.get(tp)))
        for topic, partition in self._exported - _layout_keys(layout):
            CONSUMER_LAG.remove(self.service, topic, partition)  # the topic or partition is gone
            self._exported.discard((topic, partition))
        for (topic, partition), lag in lags.items():
            CONSUMER_LAG.labels(self.service, topic, partition).set(lag)
        self._exported |= set(lags)

    async def _refresh_outbox(self) -> None:
        async with self._pool.acquire() as conn:
            OUTBOX_PENDING.labels(self.service).set(await count_outbox(conn))

    @property
    def _timeout_s(self) -> float:
        return max(self.interval_s, 10.0)

    async def _guarded(self, part: str, step: Callable[[], Awaitable[None]]) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            kind = type(exc).__name__
            if kind not in self._warned[part]:
                self._warned[part].add(kind)
                log.warning("backlog_metrics_failed", part=part, error=kind, detail=str(exc)[:300])
            if part == "consumer_lag":
                await self._drop_broker()
            return
        if self._warned.pop(part, None):
            log.info("backlog_metrics_recovered", part=part)

    async def _drop_broker(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.close()
