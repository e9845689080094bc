"""Kafka clients built from settings, and topic creation from the registry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from rastro_events.topics import TopicSpec
from rastro_kit.settings import KitSettings

__all__ = ["apply_topics", "make_consumer", "make_producer"]


def make_producer(settings: KitSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=settings.kafka_client_id or f"rastro-{settings.service_name}",
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


def make_consumer(settings: KitSettings, *topics: str, group_id: str | None, **kw: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=settings.kafka_client_id or f"rastro-{settings.service_name}",
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.max_poll_records,
        **kw,
    )


async def apply_topics(bootstrap: str, specs: Iterable[TopicSpec], replication_factor: int = 1) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(s.name, s.partitions, replication_factor, topic_configs=dict(s.configs))
            for s in specs
            if s.name not in existing
        ]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
        return [t.name for t in new]
    finally:
        await admin.close()
