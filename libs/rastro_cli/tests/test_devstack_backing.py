"""Tansu and the embedded Postgres as the dev stack starts them, and the topic registry applied to Tansu."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from rastro_cli.devstack.broker import BrokerProcess, start_broker
from rastro_cli.devstack.postgres import start_postgres
from rastro_cli.devstack.topics import apply_topics
from rastro_events.topics import all_topics

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with start_broker(log_path=log) as broker:
        yield broker
    assert not broker.child.running
    assert "listening on: tcp://" + broker.bootstrap in log.read_text()


async def test_topics_are_applied_once_and_then_left_alone(broker: BrokerProcess) -> None:
    specs = all_topics(partitions=3, retry_tiers=2)
    first = await apply_topics(broker.bootstrap, specs)
    second = await apply_topics(broker.bootstrap, specs)
    assert sorted(first.created) == sorted(s.name for s in specs) and first.existing == []
    assert second.created == [] and sorted(second.existing) == sorted(first.created)

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        assert set(await admin.list_topics()) >= {s.name for s in specs}
        described = await admin.describe_topics(["rastro.orders.v1", "rastro.auth.keys.v1"])
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described}
    assert partitions == {"rastro.orders.v1": 3, "rastro.auth.keys.v1": 1}


def test_rastro_topics_apply_reports_what_it_did(broker: BrokerProcess) -> None:
    rastro = Path(sys.executable).with_name("rastro")
    run = subprocess.run(
        [str(rastro), "topics", "apply", "--bootstrap", broker.bootstrap, "--partitions", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    assert "rastro.eta.v1" in run.stdout
    assert "already there, on " + broker.bootstrap in run.stdout


def test_rastro_topics_apply_fails_clearly_without_a_broker() -> None:
    rastro = Path(sys.executable).with_name("rastro")
    run = subprocess.run(
        [str(rastro), "topics", "apply", "--bootstrap", "127.0.0.1:9", "--wait", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 1
    assert "cannot reach a broker at 127.0.0.1:9" in run.stdout


async def test_embedded_postgres_serves_the_rastro_database_and_stops(tmp_path: Path) -> None:
    pg = start_postgres(tmp_path / "pg")
    try:
        assert pg.url.startswith("postgresql://postgres@/rastro?host=")
        connection = await asyncpg.connect(pg.url)
        try:
            assert await connection.fetchval("SELECT current_database()") == "rastro"
        finally:
            await connection.close()
        assert start_postgres(tmp_path / "pg").server is pg.server  # attaching again is harmless
    finally:
        pg.stop()
    assert not pg.running
