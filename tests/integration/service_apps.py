"""The five services' real FastAPI apps in-process, against the real Postgres and broker, *without* their
consumers (other tests' consumer groups must not be disturbed, and group joins are slow on Tansu).

Each app gets what its routes need: its pool (migrations applied), its producer, and the real
``Authenticator``: ingest resolves keys from its own table, the others from one ``KeyDirectory`` fed by
``rastro.auth.keys.v1`` — which ingest's outbox relay, run here, fills. Keys are made through ingest's
API, so a role travels the path it travels in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from rastro_dlq_replay.app import build_app as build_dlq_replay
from rastro_dlq_replay.settings import DlqReplaySettings
from rastro_eta.app import build_app as build_eta
from rastro_eta.settings import EtaSettings
from rastro_ingest.adapters.repository import DbKeyResolver
from rastro_ingest.app import build_app as build_ingest
from rastro_ingest.settings import IngestSettings
from rastro_kit.auth import Authenticator, KeyDirectory, hash_key
from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.kafka import make_producer
from rastro_kit.outbox import OutboxRelay
from rastro_kit.testing import wait_until
from rastro_normalization.app import build_app as build_normalization
from rastro_normalization.settings import NormalizationSettings
from rastro_notification.app import build_app as build_notification
from rastro_notification.settings import NotificationSettings

__all__ = ["OPERATOR_KEY", "ROLE_NAMES", "ServiceApps", "running_service_apps"]

OPERATOR_KEY = f"rk_admin_{secrets.token_urlsafe(16)}"
ROLE_NAMES = ("admin", "operator", "sre", "viewer", "integration", "fleet")
BUILDERS: dict[str, tuple[Any, Any]] = {
    "ingest": (build_ingest, IngestSettings),
    "normalization": (build_normalization, NormalizationSettings),
    "eta": (build_eta, EtaSettings),
    "notification": (build_notification, NotificationSettings),
    "dlq-replay": (build_dlq_replay, DlqReplaySettings),
}


@dataclass
class ServiceApps:
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    tenant: str  # the home tenant of every role key
    child: str  # a tenant the 3PL key may act for
    stranger: str  # a tenant no key but the operator's may see
    keys: dict[str, str] = field(default_factory=dict)  # role (or "3pl", "operator-key") -> key
    key_ids: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def make_key(self, tenant: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.clients["ingest"].post(
            f"/v1/tenants/{tenant}/keys", json={"name": name, **body}, headers=self.auth(OPERATOR_KEY)
        )
        assert response.status_code == 201, response.text
        return dict(response.json())


async def _start(app: FastAPI, resolver: Any) -> None:
    runtime = app.state.runtime
    s = runtime.settings
    runtime.pool = runtime.session_pool = await create_pool(
        s.database_url, s.schema, max_size=4, application_name=f"{s.service_name}-matrix"
    )
    await apply_migrations(runtime.pool, s.schema, runtime.definition.migrations)
    runtime._migrated = True
    runtime.producer = make_producer(s)
    await runtime.producer.start()
    runtime.authenticator = Authenticator(resolver or DbKeyResolver(runtime), s.admin_api_key)


async def _stop(app: FastAPI) -> None:
    runtime = app.state.runtime
    if runtime.producer is not None:
        await runtime.producer.stop()
    if runtime.pool is not None:
        await runtime.pool.close()


@contextlib.asynccontextmanager
async def running_service_apps(
    bootstrap: str, idempotence: bool, database_url: str
) -> AsyncIterator[ServiceApps]:
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "RASTRO_KAFKA_IDEMPOTENCE": idempotence,
        "RASTRO_ADMIN_API_KEY": SecretStr(OPERATOR_KEY),
        "RASTRO_MODE": "development",
        "RASTRO_LOG_LEVEL": "WARNING",
    }
    apps = {name: build(settings(**common)) for name, (build, settings) in BUILDERS.items()}
    ingest_runtime = apps["ingest"].state.runtime
    directory = KeyDirectory(ingest_runtime.consumer_factory())
    tasks: list[asyncio.Task[None]] = []
    clients: dict[str, httpx.AsyncClient] = {}
    try:
        for name, app in apps.items():
            await _start(app, None if name == "ingest" else directory)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            clients[name] = httpx.AsyncClient(transport=transport, base_url=f"http://{name}", timeout=30)
        s = ingest_runtime.settings
        relay = OutboxRelay(ingest_runtime.session_pool, ingest_runtime.producer, s.schema, "ingest")
        tasks += [asyncio.create_task(relay.run()), asyncio.create_task(directory.run())]
        suffix = secrets.token_hex(4)
        stack = ServiceApps(apps, clients, f"rm-home-{suffix}", f"rm-child-{suffix}", f"rm-other-{suffix}")
        for tenant in (stack.tenant, stack.child, stack.stranger):
            created = await clients["ingest"].post(
                "/v1/tenants", json={"id": tenant, "name": tenant}, headers=stack.auth(OPERATOR_KEY)
            )
            assert created.status_code == 201, created.text
        specs: dict[str, dict[str, Any]] = {role: {"role": role} for role in ROLE_NAMES}
        specs["3pl"] = {"role": "operator", "tenants": [stack.child]}
        specs["legacy-subscriptions"] = {"scopes": ["subscriptions:manage"]}
        for label, body in specs.items():
            made = await stack.make_key(stack.tenant, label, body)
            stack.keys[label], stack.key_ids[label] = made["key"], made["id"]
        stack.keys["operator-key"] = OPERATOR_KEY
        wanted = [hash_key(k) for label, k in stack.keys.items() if label != "operator-key"]

        async def all_known() -> bool:
            return all([await directory.resolve(h) is not None for h in wanted])

        await wait_until(all_known, timeout=60, interval=0.1, message="every key in the key directory")
        yield stack
    finally:
        directory.stop()
        for client in clients.values():
            await client.aclose()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for app in apps.values():
            await _stop(app)
