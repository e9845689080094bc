"""WebhookSender against a real HTTP server (uvicorn + Starlette on a free local port).

The receiver verifies every request with the official ``standardwebhooks`` library, as a subscriber
would. Slow and never-ending responses wait on an event released at teardown, so timeouts are real
and nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import aiohttp
import httpx
import pytest
import pytest_asyncio
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from rastro_notification.adapters.webhook_sender import (
    EXCERPT_BYTES,
    PinnedResolver,
    WebhookSender,
    new_webhook_session,
    resolve_host,
)
from rastro_notification.domain.delivery import AttemptError, Outcome
from rastro_notification.domain.signing import generate_secret

pytestmark = pytest.mark.integration

OLD_SECRET, NEW_SECRET = generate_secret(), generate_secret()
BODY = b'{"type":"tracking.delivered","subject":"acme/AA123456785BR","data":{"city":"S\xc3\xa3o Paulo"}}'
# Multi-byte characters straddle the excerpt limit: a cut must not leave half a character.
BIG_BODY = ("ã" * 2000).encode()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified_by: list[str]


@dataclass
class Receiver:
    base_url: str
    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def seen(self, msg_id: str) -> list[Received]:
        return [r for r in self.requests if r.headers.get("webhook-id") == msg_id]


def build_app(receiver: Receiver, ready: asyncio.Event) -> Starlette:
    async def record(request: Request) -> Received:
        body = await request.body()
        headers = dict(request.headers)
        verified_by = []
        for name, secret in (("old", OLD_SECRET), ("new", NEW_SECRET)):
            with contextlib.suppress(WebhookVerificationError):
                Webhook(secret).verify(body, headers)
                verified_by.append(name)
        received = Received(request.url.path, headers, body, verified_by)
        receiver.requests.append(received)
        return received

    async def hook(request: Request) -> Response:
        received = await record(request)
        if not received.verified_by:
            return PlainTextResponse("bad signature", status_code=401)
        extra = (
            {"retry-after": request.query_params["retry_after"]}
            if "retry_after" in request.query_params
            else {}
        )
        status = request.path_params["status"]
        return PlainTextResponse(f"answered {status}", status_code=status, headers=extra)

    async def big(request: Request) -> Response:
        await record(request)
        return Response(BIG_BODY, media_type="text/plain; charset=utf-8")

    async def redirect(request: Request) -> Response:
        await record(request)
        return RedirectResponse("/hook/200", status_code=307)

    async def slow(request: Request) -> Response:
        await record(request)
        await receiver.release.wait()
        return PlainTextResponse("too late")

    async def trickle(request: Request) -> Response:
        await record(request)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"first bytes"
            await receiver.release.wait()

        return StreamingResponse(chunks(), status_code=202)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ready.set()
        yield

    return Starlette(
        routes=[
            Route("/hook/{status:int}", hook, methods=["POST"]),
            Route("/big", big, methods=["POST"]),
            Route("/redirect", redirect, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
            Route("/trickle", trickle, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def receiver(serve_asgi: Any) -> AsyncIterator[Receiver]:
    """This module's own receiver (it overrides the conftest one): fixed routes, two secrets."""
    ready = asyncio.Event()
    receiver = Receiver(base_url="")
    async with serve_asgi(build_app(receiver, ready), ready) as base_url:
        receiver.base_url = base_url
        yield receiver
        receiver.release.set()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_webhook_session(8, user_agent="test") as client:
        yield client


@pytest.fixture
def sender(client: aiohttp.ClientSession) -> WebhookSender:
    return WebhookSender(client, timeout_s=5.0, allow_private=True, require_https=False)


def new_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


async def test_a_delivery_verifies_with_the_official_library(
    sender: WebhookSender, receiver: Receiver
) -> None:
    msg_id = new_id()
    result = await sender.send(f"{receiver.base_url}/hook/200", msg_id, int(time.time()), BODY, [NEW_SECRET])

    assert (result.status_code, result.outcome, result.error) == (200, Outcome.DELIVERED, None)
    assert result.response_excerpt == "answered 200"
    assert result.latency_ms > 0
    [seen] = receiver.seen(msg_id)
    assert seen.body == BODY
    assert seen.verified_by == ["new"]
    assert seen.headers["content-type"] == "application/json"


async def test_during_a_rotation_both_secrets_verify(sender: WebhookSender, receiver: Receiver) -> None:
    msg_id = new_id()
    result = await sender.send(
        f"{receiver.base_url}/hook/204", msg_id, int(time.time()), BODY, [OLD_SECRET, NEW_SECRET]
    )
    assert result.outcome is Outcome.DELIVERED
    assert receiver.seen(msg_id)[0].verified_by == ["old", "new"]


async def test_extra_headers_pass_but_cannot_forge_the_signature(
    sender: WebhookSender, receiver: Receiver
) -> None:
    msg_id = new_id()
    result = await sender.send(
        f"{receiver.base_url}/hook/200",
        msg_id,
        int(time.time()),
        BODY,
        [NEW_SECRET],
        extra_headers={"X-Rastro-Tenant": "acme", "Webhook-Signature": "v1,forged", "Webhook-Id": "other"},
    )
    assert result.outcome is Outcome.DELIVERED
    [seen] = receiver.seen(msg_id)
    assert seen.headers["x-rastro-tenant"] == "acme"
    assert "forged" not in seen.headers["webhook-signature"]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (400, Outcome.FAILED_PERMANENTLY),
        (410, Outcome.ENDPOINT_GONE),
        (500, Outcome.RETRY),
        (502, Outcome.RETRY),
    ],
)
async def test_status_codes_are_reported_and_classified(
    sender: WebhookSender, receiver: Receiver, status: int, outcome: Outcome
) -> None:
    result = await sender.send(
        f"{receiver.base_url}/hook/{status}", new_id(), int(time.time()), BODY, [OLD_SECRET]
    )
    assert (result.status_code, result.outcome) == (status, outcome)
    assert result.response_excerpt == f"answered {status}"
    assert result.retry_after_s is None


async def test_retry_after_seconds_are_reported(sender: WebhookSender, receiver: Receiver) -> None:
    url = f"{receiver.base_url}/hook/503?retry_after=120"
    result = await sender.send(url, new_id(), int(time.time()), BODY, [OLD_SECRET])
    assert (result.status_code, result.outcome, result.retry_after_s) == (503, Outcome.RETRY, 120.0)


async def test_retry_after_dates_are_reported(sender: WebhookSender, receiver: Receiver) -> None:
    when = httpx.QueryParams({"retry_after": formatdate(time.time() + 60, usegmt=True)})
    result = await sender.send(
        f"{receiver.base_url}/hook/429?{when}", new_id(), int(time.time()), BODY, [OLD_SECRET]
    )
    assert result.outcome is Outcome.RETRY
    assert result.retry_after_s is not None
    assert 50 <= result.retry_after_s <= 61


async def test_redirects_are_not_followed(sender: WebhookSender, receiver: Receiver) -> None:
    msg_id = new_id()
    result = await sender.send(f"{receiver.base_url}/redirect", msg_id, int(time.time()), BODY, [OLD_SECRET])
    assert (result.status_code, result.outcome) == (307, Outcome.FAILED_PERMANENTLY)
    assert result.error_detail is not None
    assert "/hook/200" in result.error_detail
    assert [r.path for r in receiver.seen(msg_id)] == ["/redirect"]


async def test_the_excerpt_is_capped_at_one_kib_without_splitting_a_character(
    sender: WebhookSender, receiver: Receiver
) -> None:
    result = await sender.send(f"{receiver.base_url}/big", new_id(), int(time.time()), BODY, [OLD_SECRET])
    assert result.response_excerpt is not None
    assert result.response_excerpt == "ã" * (EXCERPT_BYTES // 2)
    assert len(result.response_excerpt.encode()) <= EXCERPT_BYTES


async def test_a_slow_endpoint_times_out(client: aiohttp.ClientSession, receiver: Receiver) -> None:
    sender = WebhookSender(client, timeout_s=0.3, allow_private=True, require_https=False)
    msg_id = new_id()
    result = await sender.send(f"{receiver.base_url}/slow", msg_id, int(time.time()), BODY, [OLD_SECRET])
    assert (result.status_code, result.error, result.outcome) == (None, AttemptError.TIMEOUT, Outcome.RETRY)
    assert 250 <= result.latency_ms < 5000
    assert len(receiver.seen(msg_id)) == 1


async def test_a_body_that_never_ends_keeps_its_status_and_first_bytes(
    client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sender = WebhookSender(client, timeout_s=0.3, allow_private=True, require_https=False)
    result = await sender.send(f"{receiver.base_url}/trickle", new_id(), int(time.time()), BODY, [OLD_SECRET])
    assert (result.status_code, result.outcome) == (202, Outcome.DELIVERED)
    assert result.response_excerpt == "first bytes"


async def test_a_refused_connection_is_retried(sender: WebhookSender) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: the port refuses connections
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook/200"
        result = await sender.send(url, new_id(), int(time.time()), BODY, [OLD_SECRET])
    assert (result.error, result.outcome) == (AttemptError.CONNECTION, Outcome.RETRY)
    assert result.error_detail is not None


async def test_private_endpoints_are_refused_before_any_request(
    client: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sender = WebhookSender(client, allow_private=False, require_https=False)
    msg_id = new_id()
    result = await sender.send(f"{receiver.base_url}/hook/200", msg_id, int(time.time()), BODY, [OLD_SECRET])
    assert (result.error, result.outcome) == (AttemptError.ENDPOINT_REJECTED, Outcome.FAILED_PERMANENTLY)
    assert result.error_detail is not None
    assert "loopback" in result.error_detail
    assert receiver.seen(msg_id) == []


async def test_https_is_enforced_when_required(sender: WebhookSender, client: aiohttp.ClientSession) -> None:
    strict = WebhookSender(client, allow_private=True, require_https=True)
    result = await strict.send("http://127.0.0.1:9/hook", new_id(), int(time.time()), BODY, [OLD_SECRET])
    assert result.error == AttemptError.ENDPOINT_REJECTED


async def test_a_name_re_pointed_at_a_private_address_is_refused(client: aiohttp.ClientSession) -> None:
    asked: list[tuple[str, int]] = []

    async def rebound(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["93.184.216.34", "10.0.0.5"]

    sender = WebhookSender(client, allow_private=False, require_https=True, resolve=rebound)
    result = await sender.send("https://Hooks.Example.com/in", new_id(), int(time.time()), BODY, [OLD_SECRET])
    assert result.error == AttemptError.ENDPOINT_REJECTED
    assert result.error_detail is not None
    assert "10.0.0.5" in result.error_detail
    assert asked == [("hooks.example.com", 443)]


async def test_a_dns_failure_is_retried(client: aiohttp.ClientSession) -> None:
    async def broken(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    sender = WebhookSender(client, allow_private=False, require_https=True, resolve=broken)
    result = await sender.send("https://hooks.example.com/in", new_id(), int(time.time()), BODY, [OLD_SECRET])
    assert (result.error, result.outcome) == (AttemptError.DNS, Outcome.RETRY)


async def test_a_resolver_that_never_answers_is_bounded_by_the_timeout(client: aiohttp.ClientSession) -> None:
    async def stuck(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()
        return []

    sender = WebhookSender(client, timeout_s=0.2, allow_private=False, require_https=True, resolve=stuck)
    started = time.monotonic()
    result = await sender.send("https://hooks.example.com/in", new_id(), int(time.time()), BODY, [OLD_SECRET])
    assert (result.error, result.outcome) == (AttemptError.DNS, Outcome.RETRY)
    assert result.error_detail is not None and "0.2 s" in result.error_detail
    assert time.monotonic() - started < 2


class RedirectedResolver(PinnedResolver):
    """Notes the addresses the connector was handed, then connects to the local receiver instead."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.handed: list[list[str]] = []

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> Any:
        self.handed.append([r["host"] for r in await super().resolve(host, port, socket.AF_UNSPEC)])
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": self.port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]


async def test_a_public_endpoint_is_sent_to_at_the_addresses_that_were_checked(receiver: Receiver) -> None:
    checks: list[str] = []

    async def public(host: str, port: int) -> list[str]:
        checks.append(host)
        return ["93.184.216.34", "93.184.216.35"]

    port = int(receiver.base_url.rsplit(":", 1)[1])
    resolver = RedirectedResolver(port)
    async with new_webhook_session(4, user_agent="test", resolver=resolver) as session:
        sender = WebhookSender(session, allow_private=False, require_https=False, resolve=public)
        msg_id = new_id()
        result = await sender.send(
            f"http://Hooks.Example.com:{port}/hook/200", msg_id, int(time.time()), BODY, [NEW_SECRET]
        )
    assert result.outcome is Outcome.DELIVERED
    # The connection used exactly the addresses the SSRF check approved, not a second DNS answer.
    assert checks == ["hooks.example.com"]
    assert resolver.handed == [["93.184.216.34", "93.184.216.35"]]
    [seen] = receiver.seen(msg_id)
    assert seen.verified_by == ["new"]


async def test_the_pinned_resolver_falls_back_to_the_system_without_a_check() -> None:
    resolver = PinnedResolver()
    try:
        assert [r["host"] for r in await resolver.resolve("127.0.0.1", 80)] == ["127.0.0.1"]
    finally:
        await resolver.close()


async def test_the_real_resolver_finds_addresses() -> None:
    assert await resolve_host("127.0.0.1", 80) == ["127.0.0.1"]
    assert set(await resolve_host("localhost", 80)) & {"127.0.0.1", "::1"}
