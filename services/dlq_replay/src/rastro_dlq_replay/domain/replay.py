"""Sending a dead letter back to the one service that failed it.

The replay carries the original key and value byte for byte and the original headers, minus our
failure bookkeeping, plus who replayed it and under which replay id: if the service dead-letters it
again, the store finds the original dead letter through that id instead of storing a new one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import rastro_kit.dead_letters as dl
from rastro_dlq_replay.domain.dead_letter import Headers, Status
from rastro_dlq_replay.domain.stored import StoredDeadLetter
from rastro_events.topics import SERVICES, replay_topic

__all__ = [
    "ReplayPlan",
    "ReplayRecord",
    "SkipReason",
    "Skipped",
    "build_replay",
    "plan_replay",
    "replay_headers",
]

# Bookkeeping of failures (and of earlier replays) that must not travel with a replay.
_STRIPPED_PREFIXES = ("rastro-dlq-", "rastro-retry-")
_REPLAY_MARKERS = frozenset((dl.H_REPLAY_ID, dl.H_REPLAYED_BY))


class SkipReason(StrEnum):
    NOT_FOUND = "not_found"
    PURGED = "purged"
    UNKNOWN_SERVICE = "unknown_service"  # no rastro.<service>.replay in the topic registry


@dataclass(frozen=True)
class Skipped:
    id: str
    reason: SkipReason


@dataclass(frozen=True)
class ReplayPlan:
    replay: tuple[str, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True)
class ReplayRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers


def plan_replay(
    requested: Iterable[str], found: Mapping[str, StoredDeadLetter], services: Collection[str] = SERVICES
) -> ReplayPlan:
    """Which of the requested dead letters (``found``: those that exist and are visible) are sent back.

    Requested ids are taken once each, in order. One already replayed may be replayed again: the
    target's inbox makes a replay of an applied event harmless. Only services of the topic registry
    have a replay topic; a record sent to a topic that does not exist would stall the outbox.
    """
    replay: list[str] = []
    skipped: list[Skipped] = []
    for dead_letter_id in dict.fromkeys(requested):
        letter = found.get(dead_letter_id)
        if letter is None:
            skipped.append(Skipped(dead_letter_id, SkipReason.NOT_FOUND))
        elif letter.status is Status.PURGED:
            skipped.append(Skipped(dead_letter_id, SkipReason.PURGED))
        elif letter.service not in services:
            skipped.append(Skipped(dead_letter_id, SkipReason.UNKNOWN_SERVICE))
        else:
            replay.append(dead_letter_id)
    return ReplayPlan(tuple(replay), tuple(skipped))


def replay_headers(headers: Headers, *, replay_id: str, replayed_by: str) -> Headers:
    kept = tuple(
        (name, value)
        for name, value in headers
        if not name.startswith(_STRIPPED_PREFIXES) and name not in _REPLAY_MARKERS
    )
    return (*kept, (dl.H_REPLAY_ID, replay_id.encode()), (dl.H_REPLAYED_BY, replayed_by.encode()))


def build_replay(
    *,
    service: str,
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    replay_id: str,
    replayed_by: str,
) -> ReplayRecord:
    return ReplayRecord(
        topic=replay_topic(service),
        key=key,
        value=value,
        headers=replay_headers(headers, replay_id=replay_id, replayed_by=replayed_by),
    )
