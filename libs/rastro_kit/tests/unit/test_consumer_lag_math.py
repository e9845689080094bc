"""The pure parts of the backlog monitor: lag from a partition's end and a commit, and which partitions a
consumer group owns."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from rastro_kit.consumer_lag import PartitionEnd, WatchedGroup, group_partitions, partition_lag

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("high", "log_start", "committed", "expected"),
    [
        (10, 0, 3, 7),  # the usual case
        (10, 0, None, 10),  # nothing committed: the group starts at the log start
        (10, 6, None, 4),
        (10, 6, 2, 4),  # the commit points below the log start (retention removed it)
        (10, 0, 10, 0),
        (10, 0, 12, 0),  # a commit past the end (a truncated log) is not negative lag
    ],
)
def test_partition_lag(high: int, log_start: int, committed: int | None, expected: int) -> None:
    assert partition_lag(PartitionEnd(high, log_start), committed) == expected


def test_a_group_owns_its_topics_and_its_services_retry_tiers_and_replay_topic() -> None:
    layout = {
        "rastro.tracking.raw": [0, 1],
        "rastro.orders": [0],
        "rastro.normalization.retry.1": [0],
        "rastro.normalization.replay": [0],
        "rastro.eta.retry.1": [0],  # another service's tier
        "rastro.normalization.dlq": [0],  # its DLQ is produced to, not consumed
    }
    group = WatchedGroup("normalization", ("rastro.tracking.raw",))
    assert group_partitions(group, "normalization", layout) == [
        TopicPartition("rastro.normalization.replay", 0),
        TopicPartition("rastro.normalization.retry.1", 0),
        TopicPartition("rastro.tracking.raw", 0),
        TopicPartition("rastro.tracking.raw", 1),
    ]


def test_a_pattern_group_owns_every_matching_topic() -> None:
    layout = {"rastro.ingest.dlq": [0], "rastro.eta.dlq": [0, 1], "rastro.shipments": [0]}
    group = WatchedGroup("dlq-replay", pattern=r"^rastro\.[a-z_-]+\.dlq$")
    assert [(tp.topic, tp.partition) for tp in group_partitions(group, "dlq-replay", layout)] == [
        ("rastro.eta.dlq", 0),
        ("rastro.eta.dlq", 1),
        ("rastro.ingest.dlq", 0),
    ]
