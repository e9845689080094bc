"""`rastro topics apply` against a real broker: dry run, create, up to date, and growing partitions."""

from __future__ import annotations

import secrets

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from rastro_cli.devstack.topics import TopicsError, reconcile_topics
from rastro_events.topics import TopicSpec

pytestmark = pytest.mark.integration


async def test_dry_run_changes_nothing_then_apply_creates_then_nothing_is_pending(
    kafka_bootstrap: str,
) -> None:
    run = secrets.token_hex(4)
    specs = [
        TopicSpec(f"probe.{run}.a", 3, {"retention.ms": "604800000"}),
        TopicSpec(f"probe.{run}.b", 1, {"cleanup.policy": "compact"}),
    ]
    dry = await reconcile_topics(kafka_bootstrap, specs, dry_run=True)
    assert [c.create is not None for c in dry.changes] == [True, True]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert not {s.name for s in specs} & set(await admin.list_topics())

        applied = await reconcile_topics(kafka_bootstrap, specs)
        assert len(applied.pending) == 2
        described = await admin.describe_topics([s.name for s in specs])
        assert {t["topic"]: len(t["partitions"]) for t in described} == {specs[0].name: 3, specs[1].name: 1}

        again = await reconcile_topics(kafka_bootstrap, specs, dry_run=True)
        assert again.pending == [] and again.warnings == []
    finally:
        await admin.delete_topics([s.name for s in specs])
        await admin.close()


async def test_a_topic_with_fewer_partitions_is_planned_to_grow(kafka_bootstrap: str) -> None:
    name = f"probe.{secrets.token_hex(4)}.grow"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1)])
        spec = TopicSpec(name, 4)
        [change] = (await reconcile_topics(kafka_bootstrap, [spec], dry_run=True)).changes
        assert change.partitions == (2, 4) and change.create is None
        try:
            await reconcile_topics(kafka_bootstrap, [spec])
        except TopicsError as exc:  # the embedded Tansu has no CreatePartitions: say so, change nothing
            assert "cannot make the change" in str(exc)
            partitions = 2
        else:  # a real Kafka grows the topic
            partitions = 4
        [described] = await admin.describe_topics([name])
        assert len(described["partitions"]) == partitions
        smaller = TopicSpec(name, 1)
        [kept] = (await reconcile_topics(kafka_bootstrap, [smaller], dry_run=True)).changes
        assert not kept.actions and any("never lowered" in w for w in kept.warnings)
    finally:
        await admin.delete_topics([name])
        await admin.close()
