"""The relay picks partitions itself: exactly as aiokafka's default partitioner (the Java client's
murmur2), or one key's records would land on another partition than a plain ``send`` puts them."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from rastro_kit.outbox import murmur2, partition_for

pytestmark = pytest.mark.unit


def as_java_int(h: int) -> int:
    return h - (1 << 32) if h >= 1 << 31 else h


@pytest.mark.parametrize(
    ("data", "java"),
    [  # the Java client's own test vectors (UtilsTest.testMurmur2)
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_the_java_client(data: bytes, java: int) -> None:
    assert as_java_int(murmur2(data)) == java


def test_murmur2_matches_aiokafka_for_every_tail_length() -> None:
    rng = random.Random(4)
    for length in range(0, 70):
        for _ in range(30):
            data = rng.randbytes(length)
            assert murmur2(data) == aiokafka_murmur2(data), data


@pytest.mark.parametrize("count", [1, 3, 12, 13])
def test_partition_for_is_the_default_partitioners_choice(count: int) -> None:
    partitions = list(range(count))
    rng = random.Random(count)
    for _ in range(500):
        key = f"tenant-{rng.randrange(50)}/BR{rng.randrange(10**9):09d}".encode()
        assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_a_record_without_key_goes_to_some_partition() -> None:
    assert {partition_for(None, [0, 1, 2]) for _ in range(200)} == {0, 1, 2}
