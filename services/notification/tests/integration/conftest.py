"""Fixtures of the notification integration tests.

``service``: the notification service itself, started once per test module with ``serve_app`` on the
session's broker and Postgres, with two tenants and their keys, a producer for events, and the API.

``receiver``: a real webhook receiver, uvicorn + Starlette on a free loopback port.

Each test makes its own endpoint (``receiver.endpoint(...)``) with a script of answers: a status code
per request in order, then ``then`` for every later one. ``"hang"`` holds the request until the
endpoint's gate opens (``open_gate``), then answers 200, so slow endpoints are real and nothing sleeps
and hopes. Every request is verified with the official ``standardwebhooks`` library against the
endpoint's secret, as a subscriber would.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from rastro_events import (
    Envelope,
    EtaPredicted,
    Lane,
    Location,
    NormalizedTrackingEvent,
    Status,
    encode_event,
    headers_for,
    new_event,
    new_event_id,
)
from rastro_kit.db import apply_migrations, create_pool
from rastro_kit.testing import free_port, publish_api_key, serve_app, wait_until
from rastro_notification.app import build_app
from rastro_notification.settings import NotificationSettings

Answer = int | str  # a status code, or "hang"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    at: float

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Endpoint:
    url: str
    script: list[Answer]
    then: Answer = 200
    secret: str | None = None
    requests: list[Received] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def open_gate(self) -> None:
        self.gate.set()

    def next_answer(self) -> Answer:
        return self.script.pop(0) if self.script else self.then

    def verified_bodies(self) -> list[bytes]:
        return [r.body for r in self.requests if r.verified]


@dataclass
class Receiver:
    base_url: str
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    def endpoint(self, *script: Answer, then: Answer = 200, secret: str | None = None) -> Endpoint:
        name = uuid.uuid4().hex
        endpoint = Endpoint(f"{self.base_url}/hooks/{name}", list(script), then, secret)
        self.endpoints[name] = endpoint
        return endpoint


def receiver_app(receiver: Receiver, ready: asyncio.Event) -> Starlette:
    async def hook(request: Request) -> Response:
        endpoint = receiver.endpoints[request.path_params["name"]]
        body, headers = await request.body(), dict(request.headers)
        verified = False
        if endpoint.secret is not None:
            with contextlib.suppress(WebhookVerificationError):
                Webhook(endpoint.secret).verify(body, headers)
                verified = True
        endpoint.requests.append(Received(headers, body, verified, time.monotonic()))
        answer = endpoint.next_answer()
        if answer == "hang":
            await endpoint.gate.wait()
            answer = 200
        return PlainTextResponse(f"answered {answer}", status_code=int(answer))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        ready.set()
        yield

    return Starlette(routes=[Route("/hooks/{name}", hook, methods=["POST"])], lifespan=lifespan)


class _TestServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave Ctrl-C to pytest


ServeAsgi = Callable[[Any, asyncio.Event], contextlib.AbstractAsyncContextManager[str]]


@contextlib.asynccontextmanager
async def _serve_asgi(app: Any, ready: asyncio.Event) -> AsyncIterator[str]:
    """Serve ``app`` on a loopback socket bound and listening before the server runs (connections queue in
    the backlog: no start-up race); yields its base URL once the app's lifespan set ``ready``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Accepted connections inherit it. uvicorn, handed a socket, leaves Nagle on, and every response
    # (head and body written apart) would wait ~40 ms for the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(
        app,
        lifespan="on",
        http="h11",
        ws="none",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = _TestServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@pytest.fixture(scope="session")
def serve_asgi() -> ServeAsgi:
    return _serve_asgi


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def receiver(serve_asgi: ServeAsgi) -> AsyncIterator[Receiver]:
    ready = asyncio.Event()
    receiver = Receiver("")
    async with serve_asgi(receiver_app(receiver, ready), ready) as base_url:
        receiver.base_url = base_url
        try:
            yield receiver
        finally:
            for endpoint in receiver.endpoints.values():
                endpoint.open_gate()


@dataclass
class Service:
    api: httpx.AsyncClient
    producer: AIOKafkaProducer
    tenant: str
    key: str
    other_tenant: str
    other_key: str
    admin_key: str
    per_endpoint: int
    app: Any = None

    @property
    def pool(self) -> Any:
        return self.app.state.runtime.pool

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {key or self.key}"}

    async def subscribe(self, endpoint: Endpoint, event_types: list[str] | None = None, **extra: Any) -> Any:
        body = {"url": endpoint.url, "event_types": event_types or ["*"], "description": "test", **extra}
        response = await self.api.post("/v1/subscriptions", json=body, headers=self.auth())
        assert response.status_code == 201, response.text
        endpoint.secret = response.json()["secret"]
        return response.json()

    async def subscribe_url(self, url: str, event_types: list[str] | None = None, **extra: Any) -> Any:
        body = {"url": url, "event_types": event_types or ["*"], "description": "test", **extra}
        response = await self.api.post("/v1/subscriptions", json=body, headers=self.auth())
        assert response.status_code == 201, response.text
        return response.json()

    async def publish(self, envelope: Envelope) -> None:
        is_tracking = envelope.type == NormalizedTrackingEvent.ce_type()
        topic = NormalizedTrackingEvent.topic if is_tracking else EtaPredicted.topic
        await self.producer.send_and_wait(
            topic, encode_event(envelope), key=envelope.subject.encode(), headers=headers_for(envelope)
        )

    async def get(self, path: str, key: str | None = None) -> Any:
        response = await self.api.get(path, headers=self.auth(key))
        assert response.status_code == 200, response.text
        return response.json()

    async def messages(self, sub_id: str) -> list[dict[str, Any]]:
        return list((await self.get(f"/v1/subscriptions/{sub_id}/messages"))["items"])

    async def attempts(self, sub_id: str) -> list[dict[str, Any]]:
        return list((await self.get(f"/v1/subscriptions/{sub_id}/attempts"))["items"])

    def tracking(
        self,
        number: str,
        status: Status = Status.DELIVERED,
        substatus: str = "delivered.signed",
        tenant: str | None = None,
        carrier: str = "correios",
    ) -> Envelope:
        now = datetime.now(UTC)
        payload = NormalizedTrackingEvent(
            tracking_number=number,
            carrier=carrier,
            status_code="BDE-01",
            status=status,
            substatus=substatus,
            description="Objeto entregue ao destinatário",
            occurred_at=now,
            occurred_at_utc=now,
            location=Location(city="São Paulo", state="SP", country="BR"),
            raw_event_id=new_event_id(),
        )
        return new_event(payload, tenant_id=tenant or self.tenant, source="/rastro/normalization")

    def eta(self, number: str, expected: date = date(2026, 12, 1), tenant: str | None = None) -> Envelope:
        payload = EtaPredicted(
            tracking_number=number,
            expected_date=expected,
            promise_date=date(2026, 12, 3),
            lane=Lane(carrier="correios"),
            model_version="test",
            sample_size=12,
            predicted_at=datetime.now(UTC),
            milestone=Status.IN_TRANSIT,
        )
        return new_event(payload, tenant_id=tenant or self.tenant, source="/rastro/eta")

    @staticmethod
    def number() -> str:
        return f"AA{secrets.randbelow(10**9):09d}BR"


def _test_settings(
    kafka_bootstrap: str,
    kafka_idempotence: bool,
    database_url: str,
    admin_key: str,
    per_endpoint: int,
    overrides: dict[str, Any],
) -> NotificationSettings:
    values: dict[str, Any] = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "RASTRO_KAFKA_IDEMPOTENCE": kafka_idempotence,
        "RASTRO_ADMIN_API_KEY": admin_key,
        "RASTRO_MODE": "development",
        "RASTRO_NOTIFICATION_RETRY_SCHEDULE": "0.2,0.2,0.2",
        "RASTRO_NOTIFICATION_REQUEST_TIMEOUT_S": 10,
        "RASTRO_NOTIFICATION_CLAIM_LEASE_S": 20,
        "RASTRO_NOTIFICATION_PER_ENDPOINT_CONCURRENCY": per_endpoint,
        "RASTRO_NOTIFICATION_POLL_INTERVAL_S": 0.5,
    }
    return NotificationSettings(**{**values, **overrides})


@pytest.fixture(scope="module")
def service_overrides(mailbox: Mailbox) -> dict[str, Any]:
    """Settings of the module's service beyond the defaults above; a test module may override this."""
    return {
        "RASTRO_NOTIFICATION_SMTP_HOST": mailbox.host,
        "RASTRO_NOTIFICATION_SMTP_PORT": mailbox.port,
        "RASTRO_NOTIFICATION_SMTP_SECURITY": "none",
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(
    kafka_bootstrap: str,
    kafka_idempotence: bool,
    database_url: str,
    topics: list[str],
    service_overrides: dict[str, Any],
) -> AsyncIterator[Service]:
    admin_key, per_endpoint = f"rk_admin_{secrets.token_urlsafe(16)}", 3
    settings = _test_settings(
        kafka_bootstrap, kafka_idempotence, database_url, admin_key, per_endpoint, service_overrides
    )
    app = build_app(settings)
    tenant, other = f"t{secrets.token_hex(4)}", f"t{secrets.token_hex(4)}"
    keys = [
        await publish_api_key(kafka_bootstrap, t, ["subscriptions:manage"], idempotence=kafka_idempotence)
        for t in (tenant, other)
    ]
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=kafka_idempotence, acks="all"
    )
    await producer.start()
    try:
        async with serve_app(app) as base_url, httpx.AsyncClient(base_url=base_url, trust_env=False) as api:
            svc = Service(api, producer, tenant, keys[0], other, keys[1], admin_key, per_endpoint, app)
            await _wait_until_serving(app, svc)
            yield svc
    finally:
        await producer.stop()


async def _wait_until_serving(app: Any, svc: Service) -> None:
    async def ready() -> bool:
        return (await svc.api.get("/readyz")).status_code == 200

    async def keys_known() -> bool:
        answers = [
            await svc.api.get("/v1/subscriptions", headers=svc.auth(k)) for k in (svc.key, svc.other_key)
        ]
        return all(a.status_code == 200 for a in answers)

    await wait_until(ready, timeout=60, message="/readyz")
    await wait_until(app.state.runtime.runners[0].assigned.is_set, timeout=60, message="consumer assignment")
    await wait_until(keys_known, message="tenant keys known")


@pytest_asyncio.fixture(loop_scope="session")
async def pool(database_url: str) -> AsyncIterator[tuple[Any, str]]:
    """A pool on a schema of its own, migrated: for tests that drive the dispatchers without a broker."""
    service = f"notiftest{secrets.token_hex(3)}"
    pool = await create_pool(database_url, service)
    await apply_migrations(pool, service, ("rastro_notification.migrations",))
    yield pool, service
    await pool.execute(f'DROP SCHEMA "{service}" CASCADE')
    await pool.close()


@pytest.fixture
def settings(pool: tuple[Any, str], database_url: str) -> Callable[..., NotificationSettings]:
    def make(**overrides: Any) -> NotificationSettings:
        values: dict[str, Any] = {
            "service_name": pool[1],
            "DATABASE_URL": database_url,
            "RASTRO_MODE": "development",
            "RASTRO_NOTIFICATION_RETRY_SCHEDULE": "0.2",
            "RASTRO_NOTIFICATION_POLL_INTERVAL_S": 0.2,
        }
        return NotificationSettings(**{**values, **overrides})

    return make


@dataclass
class Mailbox:
    """A real SMTP server (aiosmtpd, in its own thread) that keeps every message it accepts."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append(message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
