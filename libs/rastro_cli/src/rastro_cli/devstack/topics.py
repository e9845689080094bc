"""The registry's topics on a broker.

``apply_topics`` (the dev stack, at start) creates what is missing and leaves the rest alone;
``reconcile_topics`` (``rastro topics apply``) also brings existing topics up to the registry, through
``rastro_kit.topic_admin``, with the service's TLS/SASL settings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import IncompatibleBrokerVersion, KafkaConnectionError, KafkaError

from rastro_events.topics import TopicSpec
from rastro_kit.kafka import client_options
from rastro_kit.settings import KitSettings
from rastro_kit.topic_admin import TopicsPlan, execute, plan, read_cluster

__all__ = ["TopicsApplied", "TopicsError", "apply_topics", "reconcile_topics"]

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


async def reconcile_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    replication_factor: int = 1,
    dry_run: bool = False,
    connect_deadline: float = 30.0,
) -> TopicsPlan:
    """Plan the changes that bring the cluster to ``specs`` and, unless ``dry_run``, make them."""
    specs = list(specs)
    admin = await _connect(bootstrap, connect_deadline)
    try:
        topics_plan = plan(specs, await read_cluster(admin, [s.name for s in specs]), replication_factor)
        if not dry_run:
            await execute(admin, topics_plan)
    except IncompatibleBrokerVersion as exc:
        raise TopicsError(
            f"this broker cannot make the change ({exc}); run with --dry-run to see it and apply it by hand"
        ) from exc
    except (KafkaError, RuntimeError) as exc:
        raise TopicsError(str(exc)) from exc
    finally:
        await admin.close()
    return topics_plan


async def _connect(bootstrap: str, deadline: float) -> AIOKafkaAdminClient:
    give_up = time.monotonic() + deadline
    # Security options (TLS, SASL) from the environment, as every service reads them.
    options = client_options(KitSettings(KAFKA_BOOTSTRAP_SERVERS=bootstrap, service_name="topics"))
    while True:
        admin = AIOKafkaAdminClient(**options, request_timeout_ms=10_000)
        try:
            await admin.start()
            return admin
        except KafkaConnectionError as exc:
            await admin.close()
            if time.monotonic() >= give_up:
                raise TopicsError(f"cannot reach a broker at {bootstrap}: {exc}") from exc
            await asyncio.sleep(1.0)
