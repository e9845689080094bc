"""The five services as separate processes, as `make run` starts them, plus the gateway and a webhook
receiver, for end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rastro_kit.testing import free_port, wait_until

SERVICES = ("ingest", "normalization", "eta", "notification", "dlq-replay")


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restart(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
        self.start()

    def start(self) -> None:
        log = self.log_path.open("ab")
        module = "rastro_" + self.name.replace("-", "_")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Receiver:
    """A webhook endpoint that verifies every delivery and counts each webhook-id it accepted."""

    secret: str | None = None
    secrets: list[str] = field(default_factory=list)  # more subscriptions' secrets, any may sign
    accepted: Counter[str] = field(default_factory=Counter)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: list[tuple[str, bytes]] = field(default_factory=list)  # (webhook-id, body) of every acceptance
    rejected: int = 0

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        if not self._verified(body, dict(request.headers)):
            self.rejected += 1
            return Response(status_code=400)
        msg_id = request.headers["webhook-id"]
        self.accepted[msg_id] += 1
        self.raw.append((msg_id, body))
        self.bodies[msg_id] = json.loads(body)
        return Response(status_code=204)

    def _verified(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in [s for s in (self.secret, *self.secrets) if s]:
            try:
                Webhook(secret).verify(body, headers)
                return True
            except WebhookVerificationError:
                continue
        return False

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks", self.handle, methods=["POST"])])

    def events_for(self, tracking_number: str, prefix: str = "tracking.") -> list[dict[str, Any]]:
        return [
            b
            for b in self.bodies.values()
            if b["data"].get("tracking_number") == tracking_number and b["type"].startswith(prefix)
        ]


class Stack:
    def __init__(self, bootstrap: str, database_url: str, idempotence: bool, logs: Path) -> None:
        self.admin_key = "rk_admin_e2e_" + os.urandom(8).hex()
        base_env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": database_url,
            "RASTRO_KAFKA_IDEMPOTENCE": str(idempotence).lower(),
            "RASTRO_MODE": "development",
            "RASTRO_ADMIN_API_KEY": self.admin_key,
            "RASTRO_LOG_LEVEL": "INFO",
            "RASTRO_RETRY_DELAYS": "1,2,3",
            "RASTRO_NOTIFICATION_RETRY_SCHEDULE": "0.5,1,2,4",
            # Shortened like the schedule: a flapping endpoint (tests/chaos) is parked seconds, not minutes.
            "RASTRO_NOTIFICATION_REQUEST_TIMEOUT_S": "5",
            "RASTRO_NOTIFICATION_BREAKER_OPEN_S": "0.5",
            "RASTRO_NOTIFICATION_BREAKER_MAX_OPEN_S": "2",
        }
        self.services = {
            name: ServiceProcess(
                name, port, {**base_env, "RASTRO_HTTP_PORT": str(port)}, logs / f"{name}.log"
            )
            for name, port in ((n, free_port()) for n in SERVICES)
        }
        self.gateway_url = ""
        self.tenant_key = ""

    def start(self) -> None:
        for service in self.services.values():
            service.start()

    async def wait_ready(self, *names: str, timeout: float = 90) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            for name in names or tuple(self.services):
                service = self.services[name]

                async def ready(s: ServiceProcess = service) -> bool:
                    if s.process is not None and s.process.poll() is not None:
                        raise AssertionError(f"{s.name} exited:\n{s.tail()}")
                    try:
                        return (await client.get(s.url + "/readyz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await wait_until(ready, timeout=timeout, interval=0.25, message=f"{name} /readyz")

    async def create_tenant(self, tenant: str) -> str:
        admin = {"Authorization": f"Bearer {self.admin_key}"}
        async with httpx.AsyncClient(base_url=self.services["ingest"].url, timeout=10) as c:
            r = await c.post("/v1/tenants", json={"id": tenant, "name": tenant}, headers=admin)
            assert r.status_code == 201, r.text
            r = await c.post(
                f"/v1/tenants/{tenant}/keys",
                headers=admin,
                json={
                    "name": "e2e",
                    "environment": "sandbox",
                    "scopes": [
                        "events:write",
                        "shipments:read",
                        "subscriptions:manage",
                        "dead-letters:manage",
                    ],
                },
            )
            assert r.status_code == 201, r.text
            return str(r.json()["key"])

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()


async def until_known_everywhere(client: httpx.AsyncClient, key: str) -> None:
    """A new key reaches the other services through a topic: wait until each one accepts it."""
    headers = {"Authorization": f"Bearer {key}"}

    async def known() -> bool:
        checks = await asyncio.gather(
            client.get("/v1/shipments/none", headers=headers),
            client.get("/v1/subscriptions", headers=headers),
            client.get("/v1/dead-letters", headers=headers),
            client.get("/v1/eta/lanes", headers=headers),
        )
        return all(r.status_code != 401 for r in checks)

    await wait_until(known, timeout=30, message="API key known to every service")
