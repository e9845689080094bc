"""A running dlq-replay for integration tests, fed by a real producer and answered over real HTTP.

Start it once per test module (consumer-group joins are slow on Tansu); tests keep apart by using
their own tenants.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from rastro_dlq_replay.app import build_app
from rastro_dlq_replay.settings import DlqReplaySettings
from rastro_events import RawTrackingEvent, encode_event, headers_for, new_event
from rastro_events.topics import TRACKING_RAW, dlq_topic
from rastro_kit.dead_letters import dead_letter_headers
from rastro_kit.testing import publish_api_key, serve_app, wait_until

__all__ = ["DlqHarness", "Sent", "running_dlq_replay"]

ADMIN_KEY = f"rk_test_admin_{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Sent:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


class DlqHarness:
    def __init__(self, client: httpx.AsyncClient, producer: AIOKafkaProducer, bootstrap: str) -> None:
        self.client, self.producer, self.bootstrap = client, producer, bootstrap
        self.tenants: dict[str, str] = {}  # role ("alpha", "beta") → a tenant id with a key of its own
        self.keys: dict[str, str] = {}  # role → API key; "unscoped" lacks dead-letters:manage
        self._offsets = itertools.count(secrets.randbelow(10**12) + 10**9)

    def auth(self, role: str | None = None) -> dict[str, str]:
        """Headers for the key of ``role``, or for the operator key."""
        return {"Authorization": f"Bearer {ADMIN_KEY if role is None else self.keys[role]}"}

    async def dead_letter(
        self,
        tenant: str,
        tracking: str,
        *,
        reason: str = "schema_violation",
        service: str = "normalization",
        key: bytes | None = None,
        value: bytes | None = None,
        original: Sequence[tuple[str, bytes]] = (),
        message: str = "it did not fit",
    ) -> Sent:
        """Publish what ``service``'s consumer runner writes when a TRACKING_RAW record fails for good."""
        if value is None:
            payload = RawTrackingEvent(
                tracking_number=tracking,
                carrier="correios",
                status_code="XX-99",
                occurred_at=datetime.now(UTC),
            )
            event = new_event(payload, tenant_id=tenant, source="/tests")
            value, original = encode_event(event), headers_for(event)
        headers = dead_letter_headers(
            original, topic=TRACKING_RAW, partition=0, offset=next(self._offsets), group=service,
            reason=reason, message=message,
        )  # fmt: skip
        return await self.send(dlq_topic(service), key or f"{tenant}/{tracking}".encode(), value, headers)

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Sent:
        await self.producer.send_and_wait(topic, value, key=key, headers=headers)
        return Sent(key, value, headers)

    async def items(self, role: str | None = None, **params: Any) -> list[dict[str, Any]]:
        response = await self.client.get(
            "/v1/dead-letters", params={"limit": 500, **params}, headers=self.auth(role)
        )
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    async def wait_for(self, count: int, **params: Any) -> list[dict[str, Any]]:
        """The operator's list for ``params`` once it has ``count`` items (and not more)."""

        async def listed() -> list[dict[str, Any]] | None:
            found = await self.items(**params)
            return found if len(found) >= count else None

        found = await wait_until(listed, timeout=30, interval=0.1, message=f"{count} dead letters, {params}")
        assert len(found) == count, found
        return found

    async def show(self, dead_letter_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/dead-letters/{dead_letter_id}", headers=self.auth())
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def replay(
        self, ids: list[str], *, dry_run: bool = False, role: str | None = None
    ) -> dict[str, Any]:
        body = {"ids": ids, "reason": "fixed the parser", "dry_run": dry_run}
        response = await self.client.post("/v1/dead-letters/replay", json=body, headers=self.auth(role))
        assert response.status_code == 200, response.text
        return dict(response.json())


@contextlib.asynccontextmanager
async def running_dlq_replay(
    bootstrap: str, idempotence: bool, database_url: str
) -> AsyncIterator[DlqHarness]:
    tenants = {role: f"{role}{secrets.token_hex(4)}" for role in ("alpha", "beta")}
    # Keys published before the app starts are known once its /readyz says the key directory caught up.
    keys = {role: await publish_api_key(bootstrap, t, ["dead-letters:manage"], idempotence=idempotence)
            for role, t in tenants.items()}  # fmt: skip
    keys["unscoped"] = await publish_api_key(
        bootstrap, tenants["alpha"], ["shipments:read"], idempotence=idempotence
    )
    settings = DlqReplaySettings(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap, DATABASE_URL=database_url, RASTRO_KAFKA_IDEMPOTENCE=idempotence,
        RASTRO_ADMIN_API_KEY=ADMIN_KEY, RASTRO_MODE="development", RASTRO_LOG_LEVEL="WARNING",
    )  # fmt: skip
    app = build_app(settings)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=idempotence, acks="all")
    await producer.start()
    try:
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            await wait_until(lambda: _ready(client), timeout=60, interval=0.2, message="/readyz")
            runner = app.state.runtime.runners[0]
            await wait_until(runner.assigned.is_set, timeout=60, interval=0.2, message="DLQ group join")
            harness = DlqHarness(client, producer, bootstrap)
            harness.tenants, harness.keys = tenants, keys
            yield harness
    finally:
        await producer.stop()


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200
