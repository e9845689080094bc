"""Create the registry's topics on a broker; topics that already exist are left as they are."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from rastro_events.topics import TopicSpec

__all__ = ["TopicsApplied", "TopicsError", "apply_topics"]

_TOPIC_ALREADY_EXISTS = 36


class TopicsError(RuntimeError):
    """The broker refused to create a topic, or could not be reached before the deadline."""


@dataclass
class TopicsApplied:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


async def apply_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    replication_factor: int = 1,
    connect_deadline: float = 30.0,
) -> TopicsApplied:
    """Idempotent: create what is missing; existing topics are reported, not altered.

    ``connect_deadline`` covers a broker that is still starting (compose starts us beside Kafka).
    """
    specs = list(specs)
    admin = await _connect(bootstrap, connect_deadline)
    try:
        response = await admin.create_topics(
            [
                NewTopic(s.name, s.partitions, replication_factor, topic_configs=dict(s.configs))
                for s in specs
            ],
            timeout_ms=30_000,
        )
    finally:
        await admin.close()

    applied = TopicsApplied()
    failures: list[str] = []
    for name, code, message in (tuple(e)[:3] for e in response.topic_errors):
        if code == 0:
            applied.created.append(name)
        elif code == _TOPIC_ALREADY_EXISTS:
            applied.existing.append(name)
        else:
            failures.append(f"{name}: error {code} {message or ''}".rstrip())
    if failures:
        raise TopicsError("could not create topics:\n" + "\n".join(failures))
    return applied


async def _connect(bootstrap: str, deadline: float) -> AIOKafkaAdminClient:
    give_up = time.monotonic() + deadline
    while True:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="rastro-topics", request_timeout_ms=10_000
        )
        try:
            await admin.start()
            return admin
        except KafkaConnectionError as exc:
            await admin.close()
            if time.monotonic() >= give_up:
                raise TopicsError(f"cannot reach a broker at {bootstrap}: {exc}") from exc
            await asyncio.sleep(1.0)
