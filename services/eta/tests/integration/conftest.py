"""The eta service on a real port, over the session's real broker and Postgres, and a harness to drive it.

The app starts once per module (consumer-group joins are slow on Tansu); tests keep apart by tenant.
Events go in as normalization publishes them; predictions come back from ``rastro.eta.v1`` through a
plain consumer (no group) and through the HTTP API.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from rastro_eta.app import build_app
from rastro_eta.domain.prediction import Prediction
from rastro_eta.evaluation import OnlineModel
from rastro_eta.olist import missing_files
from rastro_eta.settings import EtaSettings
from rastro_events import (
    Envelope,
    EtaPredicted,
    Location,
    ShipmentChanged,
    Status,
    decode_event,
    encode_event,
    headers_for,
    new_event,
)
from rastro_events.topics import ETA, SHIPMENTS
from rastro_kit.testing import serve_app, wait_until

ADMIN_KEY = f"test-admin-{secrets.token_hex(8)}"
LEARNED_FROM = datetime(2026, 1, 5, 9, 0, tzinfo=timezone(timedelta(hours=-3)))
SUBSTATUS = {
    Status.INFO_RECEIVED: "info_received.order_created",
    Status.IN_TRANSIT: "in_transit.picked_up",
    Status.OUT_FOR_DELIVERY: "out_for_delivery.with_courier",
    Status.DELIVERED: "delivered.delivered",
    Status.RETURNING: "returning.to_sender",
}
Predicted = tuple[Envelope, EtaPredicted]


def shipment_event(
    tenant: str, tracking: str, status: Status, at: datetime, *, event_id: str | None = None, **fields: Any
) -> Envelope:
    """A ``ShipmentChanged`` as normalization publishes it; correios SEDEX from SP to RJ unless told."""
    values: dict[str, Any] = {
        "carrier": "correios",
        "service": "sedex",
        "origin": Location(city="Campinas", state="SP", country="BR"),
        "destination": Location(city="Niterói", state="RJ", country="BR"),
    }
    payload = ShipmentChanged(
        tracking_number=tracking, new_status=status, substatus=SUBSTATUS[status], occurred_at=at,
        **(values | fields),
    )  # fmt: skip
    return new_event(payload, tenant_id=tenant, source="/rastro/normalization", time=at, event_id=event_id)


class EtaTopic:
    """Everything on ``rastro.eta.v1``, read from the beginning without a consumer group."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        self._parts: list[TopicPartition] = []
        self._seen: list[Predicted] = []

    async def start(self) -> None:
        await self._consumer.start()
        await self._consumer.topics()
        self._parts = [TopicPartition(ETA, p) for p in sorted(self._consumer.partitions_for_topic(ETA) or ())]
        self._consumer.assign(self._parts)
        await self._consumer.seek_to_beginning(*self._parts)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def drain(self) -> bool:
        """Read what is there; True once every partition is read to its current end."""
        for records in (await self._consumer.getmany(timeout_ms=100)).values():
            for record in records:
                envelope, payload = decode_event(record.value)
                assert isinstance(payload, EtaPredicted)
                self._seen.append((envelope, payload))
        ends = await self._consumer.end_offsets(self._parts)
        return all([await self._consumer.position(tp) >= end for tp, end in ends.items()])

    async def predictions(self, tenant: str, tracking: str) -> list[Predicted]:
        await self.drain()
        return self.read(tenant, tracking)

    def read(self, tenant: str, tracking: str) -> list[Predicted]:
        """What was read so far, reading no more (a drain costs a round trip): right after ``settled``."""
        return [(e, p) for e, p in self._seen if e.tenantid == tenant and p.tracking_number == tracking]


@dataclass
class EtaHarness:
    app: Any
    settings: EtaSettings
    http: httpx.AsyncClient
    producer: AIOKafkaProducer
    topic: EtaTopic
    bootstrap: str
    idempotence: bool

    @property
    def pool(self) -> Any:
        return self.app.state.runtime.pool

    event = staticmethod(shipment_event)

    @staticmethod
    def new_tenant() -> str:
        return f"eta-{secrets.token_hex(4)}"

    async def publish(self, *envelopes: Envelope) -> None:
        for e in envelopes:
            await self.producer.send_and_wait(
                SHIPMENTS, encode_event(e), key=e.subject.encode(), headers=headers_for(e)
            )

    async def get(self, path: str, key: str | None = ADMIN_KEY, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return await self.http.get(path, params=params, headers=headers)

    async def answers(self, path: str, key: str, status: int) -> bool:
        return (await self.get(path, key=key)).status_code == status

    async def lanes(self, tenant: str) -> dict[str, dict[str, Any]]:
        response = await self.get("/v1/eta/lanes", tenant=tenant)
        assert response.status_code == 200, response.text
        return {item["key"]: item for item in response.json()["items"]}

    async def handled(self, *envelopes: Envelope) -> bool:
        """Every event is committed (its inbox row exists) and whatever it emitted has left the outbox."""
        ids = list({e.id for e in envelopes})
        done = await self.pool.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer_group = 'eta' AND event_id = ANY($1::text[])", ids
        )
        keys = list({e.subject.encode() for e in envelopes})
        pending = await self.pool.fetchval("SELECT count(*) FROM outbox WHERE key = ANY($1::bytea[])", keys)
        return bool(done == len(ids) and pending == 0)

    async def settled(self, *envelopes: Envelope) -> None:
        """Wait until ``envelopes`` are handled and everything they emitted is read from the topic."""
        await wait_until(lambda: self.handled(*envelopes), message="events handled")
        await wait_until(self.topic.drain, message="eta topic read to its end")

    @staticmethod
    def deliveries(tenant: str, transit_days: Sequence[float]) -> list[Envelope]:
        found = []
        for i, days in enumerate(transit_days):
            shipped = LEARNED_FROM + timedelta(hours=i)
            delivered = shipped + timedelta(days=days)
            found.append(shipment_event(
                tenant, f"LEARN{i:03d}BR", Status.DELIVERED, delivered,
                created_at=shipped - timedelta(days=1), shipped_at=shipped, delivered_at=delivered,
            ))  # fmt: skip
        return found

    async def teach(self, tenant: str, transit_days: Sequence[float]) -> None:
        """Deliver one shipment per transit time and wait until the tenant's lanes have learned them."""
        await self.publish(*self.deliveries(tenant, transit_days))

        async def learned() -> bool:
            return (await self.lanes(tenant)).get("*/*/*/*", {}).get("sample_size") == len(transit_days)

        await wait_until(learned, message=f"{len(transit_days)} samples learned")

    def domain_prediction(self, events: Sequence[Envelope], transit_days: Sequence[float]) -> Prediction:
        """What the offline evaluator's model (``OnlineModel``) predicts after the same history: the
        deliveries ``teach`` publishes, then ``events``."""
        model = OnlineModel(self.settings.prediction_parameters())
        tenant = events[0].tenantid
        prediction = None
        for envelope in [*self.deliveries(tenant, transit_days), *events]:
            prediction = model.observe(ShipmentChanged.model_validate(envelope.data))
        assert prediction is not None
        return prediction


REPO_ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="session")
def olist_dir() -> Path:
    """The Olist CSVs, from ``RASTRO_OLIST_DIR`` (default ``../shared/data/olist``, relative to the repo
    root); the tests that need them skip, saying why, when they are not there."""
    folder = Path(EtaSettings().olist_dir)
    folder = folder if folder.is_absolute() else REPO_ROOT / folder
    missing = missing_files(folder)
    if missing:
        pytest.skip(f"Olist data not found at {folder} (missing {', '.join(missing)}); set RASTRO_OLIST_DIR")
    return folder


@pytest.fixture(scope="module")
async def eta(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool, topics: list[str]
) -> AsyncIterator[EtaHarness]:
    settings = EtaSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, DATABASE_URL=database_url,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence, RASTRO_ADMIN_API_KEY=ADMIN_KEY, min_samples=5,
    )  # fmt: skip
    root_handlers = set(logging.getLogger().handlers)
    app = build_app(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=kafka_idempotence, acks="all"
    )
    topic = EtaTopic(kafka_bootstrap)
    async with serve_app(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        runner = app.state.runtime.runners[0]

        async def ready() -> bool:
            return (await http.get("/readyz")).status_code == 200 and runner.assigned.is_set()

        await wait_until(ready, timeout=60, interval=0.2, message="eta ready and its consumer joined")
        await producer.start()
        await topic.start()
        try:
            yield EtaHarness(app, settings, http, producer, topic, kafka_bootstrap, kafka_idempotence)
        finally:
            await topic.stop()
            await producer.stop()
    _drop_kit_log_handlers(root_handlers)


def _drop_kit_log_handlers(keep: set[logging.Handler]) -> None:
    """create_app's logging setup binds a root handler to the sys.stdout of that moment, pytest's capture
    file, which is closed at exit while atexit hooks still log ("Logging error"); unbind it after use."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h not in keep and type(h) is logging.StreamHandler]:
        root.removeHandler(handler)
