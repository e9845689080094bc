"""Kafka clients built from settings, and topic creation from the registry.

Every client (producer, consumer, admin) gets the same connection options from ``client_options``:
bootstrap servers, client id, and the security settings (TLS, SASL) a managed cluster needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from rastro_events.topics import TopicSpec
from rastro_kit.settings import KitSettings

__all__ = ["apply_topics", "client_options", "make_admin", "make_consumer", "make_producer"]


def client_options(settings: KitSettings) -> dict[str, Any]:
    """Connection options shared by every Kafka client of a service."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": settings.kafka_client_id or f"rastro-{settings.service_name}",
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in {"SSL", "SASL_SSL"}:
        options["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # KitSettings validates the pair
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def make_producer(settings: KitSettings) -> AIOKafkaProducer:
    """``acks=all`` always; the idempotent producer unless the broker lacks it (the embedded Tansu)."""
    return AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


def make_consumer(settings: KitSettings, *topics: str, group_id: str | None, **kw: Any) -> AIOKafkaConsumer:
    options: dict[str, Any] = {
        **client_options(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": settings.max_poll_records,
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
    }
    return AIOKafkaConsumer(*topics, **(options | kw))


def make_admin(settings: KitSettings, **kw: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings), **kw)


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
