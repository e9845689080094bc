"""Reconcile a cluster's topics with the registry: what ``rastro topics apply`` does on a real cluster.

``plan`` is pure: from the desired specs and what the cluster reports it lists, per topic, the
actions to take and the differences it will not fix by itself. ``read_cluster`` and ``execute`` talk
to the brokers. The rules:

- a missing topic is created with the registry's partitions, replication factor and configs;
- a topic with fewer partitions than the registry gets more (``CreatePartitions``); one with more is
  never lowered (Kafka cannot, and keys would move): it is reported and left alone;
- a config the registry sets (``retention.ms``, ``cleanup.policy``, ``min.insync.replicas``…) that
  differs on the cluster is altered; configs the registry does not name are kept as they are;
- a different replication factor on an existing topic is reported, not changed (that needs a
  partition reassignment, an operator's job).

Adding partitions changes which partition a key hashes to: per-key order holds for new records, but
records of one shipment written before and after the change may sit in two partitions. Do it while
the producers are quiet, or accept that the consumers' state machine (which never goes backwards)
absorbs the reordering.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from rastro_events.topics import TopicSpec

__all__ = [
    "ClusterTopic",
    "TopicChange",
    "TopicsPlan",
    "desired_configs",
    "execute",
    "plan",
    "read_cluster",
]

_UNKNOWN_TOPIC = 3
_SET_ON_TOPIC = 1  # DescribeConfigs config_source DYNAMIC_TOPIC_CONFIG


@dataclass(frozen=True)
class ClusterTopic:
    """What the cluster says about one topic."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)  # effective values, wherever they come from


@dataclass
class TopicChange:
    name: str
    create: TopicSpec | None = None
    partitions: tuple[int, int] | None = None  # (current, wanted), wanted > current
    configs: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # key: (current, wanted)
    warnings: list[str] = field(default_factory=list)

    @property
    def actions(self) -> bool:
        return self.create is not None or self.partitions is not None or bool(self.configs)

    def describe(self) -> list[str]:
        """Human-readable lines, one per difference (the dry run prints them)."""
        lines: list[str] = []
        if self.create is not None:
            configs = ", ".join(f"{k}={v}" for k, v in sorted(self.create.configs.items()))
            lines.append(f"create: {self.create.partitions} partitions" + (f", {configs}" if configs else ""))
        if self.partitions is not None:
            lines.append(f"partitions: {self.partitions[0]} → {self.partitions[1]}")
        for key, (old, new) in sorted(self.configs.items()):
            lines.append(f"{key}: {old if old is not None else '(broker default)'} → {new}")
        lines.extend(f"left alone: {w}" for w in self.warnings)
        return lines


@dataclass
class TopicsPlan:
    replication_factor: int
    changes: list[TopicChange]

    @property
    def pending(self) -> list[TopicChange]:
        return [c for c in self.changes if c.actions]

    @property
    def warnings(self) -> list[str]:
        return [f"{c.name}: {w}" for c in self.changes for w in c.warnings]


def desired_configs(spec: TopicSpec, replication_factor: int) -> dict[str, str]:
    """The registry's configs plus what the replication factor implies.

    With three or more replicas, ``min.insync.replicas=2``: with ``acks=all`` a write is acknowledged
    only once two replicas have it, so losing one broker loses no acknowledged event.
    """
    configs = dict(spec.configs)
    if replication_factor >= 3:
        configs.setdefault("min.insync.replicas", "2")
    return configs


def plan(specs: Iterable[TopicSpec], cluster: dict[str, ClusterTopic], replication_factor: int) -> TopicsPlan:
    changes: list[TopicChange] = []
    for spec in specs:
        wanted = desired_configs(spec, replication_factor)
        current = cluster.get(spec.name)
        change = TopicChange(spec.name)
        if current is None:
            change.create = TopicSpec(spec.name, spec.partitions, wanted, spec.description)
            changes.append(change)
            continue
        if current.partitions < spec.partitions:
            change.partitions = (current.partitions, spec.partitions)
        elif current.partitions > spec.partitions:
            change.warnings.append(
                f"has {current.partitions} partitions, the registry asks {spec.partitions}: never lowered"
            )
        if current.replication_factor != replication_factor:
            change.warnings.append(
                f"replication factor {current.replication_factor}, wanted {replication_factor}:"
                " reassign partitions with kafka-reassign-partitions"
            )
        for key, value in wanted.items():
            if current.configs.get(key) != value:
                change.configs[key] = (current.configs.get(key), value)
        changes.append(change)
    return TopicsPlan(replication_factor, changes)


async def read_cluster(admin: AIOKafkaAdminClient, names: Sequence[str]) -> dict[str, ClusterTopic]:
    """Partitions, replication factor and effective configs of those ``names`` that exist."""
    existing = set(await admin.list_topics())
    present = [n for n in names if n in existing]
    if not present:
        return {}
    described = await admin.describe_topics(present)
    shapes: dict[str, tuple[int, int]] = {}
    for topic in described:
        if topic["error_code"] == _UNKNOWN_TOPIC:
            continue
        partitions = topic["partitions"]
        replicas = max((len(p["replicas"]) for p in partitions), default=0)
        shapes[topic["topic"]] = (len(partitions), replicas)
    configs = await _topic_configs(admin, list(shapes))
    return {
        name: ClusterTopic(name, count, replicas, configs.get(name, {}))
        for name, (count, replicas) in shapes.items()
    }


async def _topic_configs(
    admin: AIOKafkaAdminClient, names: list[str], only_set_on_topic: bool = False
) -> dict[str, dict[str, str]]:
    """Each topic's effective configs, or only those set on the topic itself (not broker defaults)."""
    if not names:
        return {}
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    )
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            name, entries = resource[3], resource[4]
            found[name] = {
                e[0]: e[1]
                for e in entries
                if e[1] is not None and (not only_set_on_topic or e[3] == _SET_ON_TOPIC)
            }
    return found


async def execute(admin: AIOKafkaAdminClient, topics_plan: TopicsPlan, timeout_ms: int = 30_000) -> None:
    """Carry out ``topics_plan``: creations, then partition increases, then config changes."""
    rf = topics_plan.replication_factor
    creates = [c.create for c in topics_plan.pending if c.create is not None]
    if creates:
        response = await admin.create_topics(
            [NewTopic(s.name, s.partitions, rf, topic_configs=dict(s.configs)) for s in creates],
            timeout_ms=timeout_ms,
        )
        errors = [f"{t[0]}: error {t[1]} {t[2] or ''}".strip() for t in response.topic_errors if t[1] != 0]
        if errors:
            raise RuntimeError("could not create topics: " + "; ".join(errors))
    grow = {c.name: NewPartitions(c.partitions[1]) for c in topics_plan.pending if c.partitions}
    if grow:
        await admin.create_partitions(grow, timeout_ms=timeout_ms)
    altered = [c for c in topics_plan.pending if c.configs and c.create is None]
    if altered:
        # AlterConfigs replaces a topic's whole set of explicit configs: send what is set today plus
        # ours, so the configs an operator set by hand survive.
        current = await _topic_configs(admin, [c.name for c in altered], only_set_on_topic=True)
        resources = [
            ConfigResource(
                ConfigResourceType.TOPIC,
                c.name,
                configs={**current.get(c.name, {}), **{k: new for k, (_, new) in c.configs.items()}},
            )
            for c in altered
        ]
        for response in await admin.alter_configs(resources):
            errors = [f"{r[3]}: error {r[0]} {r[1] or ''}".strip() for r in response.resources if r[0] != 0]
            if errors:
                raise RuntimeError("could not alter topic configs: " + "; ".join(errors))
