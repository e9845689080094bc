"""Planning topic changes against what a cluster reports, and the Kafka security settings."""

from __future__ import annotations

import ssl

import pytest
from pydantic import ValidationError

from rastro_events.topics import TopicSpec
from rastro_kit.kafka import client_options
from rastro_kit.settings import KitSettings
from rastro_kit.topic_admin import ClusterTopic, plan

pytestmark = pytest.mark.unit

SPEC = TopicSpec("rastro.x.v1", 12, {"retention.ms": "604800000"})


def test_a_missing_topic_is_created_with_min_insync_replicas_on_three_replicas() -> None:
    [change] = plan([SPEC], {}, replication_factor=3).changes
    assert change.create is not None and change.create.partitions == 12
    assert change.create.configs == {"retention.ms": "604800000", "min.insync.replicas": "2"}
    [dev] = plan([SPEC], {}, replication_factor=1).changes
    assert dev.create is not None and "min.insync.replicas" not in dev.create.configs


def test_an_up_to_date_topic_needs_nothing() -> None:
    current = ClusterTopic(SPEC.name, 12, 1, {"retention.ms": "604800000", "segment.bytes": "1073741824"})
    result = plan([SPEC], {SPEC.name: current}, replication_factor=1)
    assert result.pending == [] and result.warnings == []


def test_partitions_only_grow_and_configs_are_brought_to_the_registry() -> None:
    fewer = ClusterTopic(SPEC.name, 6, 3, {"retention.ms": "1000", "min.insync.replicas": "1"})
    [change] = plan([SPEC], {SPEC.name: fewer}, replication_factor=3).changes
    assert change.partitions == (6, 12)
    assert change.configs == {"retention.ms": ("1000", "604800000"), "min.insync.replicas": ("1", "2")}
    assert "partitions: 6 → 12" in change.describe()

    more = ClusterTopic(SPEC.name, 24, 3, {"retention.ms": "604800000", "min.insync.replicas": "2"})
    [kept] = plan([SPEC], {SPEC.name: more}, replication_factor=3).changes
    assert kept.partitions is None and not kept.actions
    assert any("never lowered" in w for w in kept.warnings)


def test_a_different_replication_factor_is_reported_not_changed() -> None:
    current = ClusterTopic(SPEC.name, 12, 1, {"retention.ms": "604800000"})
    result = plan([SPEC], {SPEC.name: current}, replication_factor=3)
    [change] = result.changes
    assert change.configs == {"min.insync.replicas": (None, "2")}  # the config is fixable
    assert any("replication factor 1, wanted 3" in w for w in result.warnings)


def test_sasl_needs_credentials_and_the_password_stays_secret() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME"):
        KitSettings(KAFKA_SECURITY_PROTOCOL="SASL_SSL")
    settings = KitSettings(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_USERNAME="rastro", KAFKA_SASL_PASSWORD="s3cret"
    )
    assert "s3cret" not in repr(settings)
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "s3cret" and isinstance(options["ssl_context"], ssl.SSLContext)


def test_plaintext_is_the_default_and_a_client_certificate_needs_its_key() -> None:
    options = client_options(KitSettings())
    assert options["security_protocol"] == "PLAINTEXT" and "ssl_context" not in options
    with pytest.raises(ValidationError, match="KAFKA_SSL_KEYFILE"):
        KitSettings(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CERTFILE="/tmp/client.pem")
