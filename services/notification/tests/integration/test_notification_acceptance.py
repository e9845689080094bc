"""Issue 7's acceptance criteria, with a compressed retry schedule and short timeouts.

- A flaky receiver (50 % failures, 10 % timeouts) behind the real broker and service: after recovery
  every event was delivered, each webhook-id accepted exactly once by an idempotent receiver, and the
  attempts log matches what the receiver saw, request by request.
- A restart in the middle of a retry schedule loses nothing (the dispatcher dies, another one takes over
  from Postgres).
- A dead endpoint (connection refused) does not slow a healthy one: healthy p50/p99 are measured with
  and without it and printed (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from rastro_events import Status
from rastro_kit.testing import free_port, wait_until
from rastro_notification.adapters import repository as repo
from rastro_notification.dispatcher import Dispatcher
from rastro_notification.domain.signing import generate_secret
from rastro_notification.settings import NotificationSettings

if TYPE_CHECKING:
    from conftest import Receiver, ServeAsgi, Service

pytestmark = pytest.mark.integration
Settings = Callable[..., NotificationSettings]
TIMEOUT_S = 0.4


@pytest.fixture(scope="module")
def service_overrides() -> dict[str, Any]:
    return {
        "RASTRO_NOTIFICATION_REQUEST_TIMEOUT_S": TIMEOUT_S,
        "RASTRO_NOTIFICATION_CLAIM_LEASE_S": 3,
        "RASTRO_NOTIFICATION_RETRY_SCHEDULE": "0.05,0.1,0.2,0.2,0.2,0.2,0.2",
        "RASTRO_NOTIFICATION_BREAKER_OPEN_S": 0.2,
        "RASTRO_NOTIFICATION_BREAKER_MAX_OPEN_S": 0.5,
        "RASTRO_NOTIFICATION_POLL_INTERVAL_S": 0.2,
    }


@dataclass
class FlakyReceiver:
    """Answers 500 to half the requests (not processed), holds 10 % past the sender's timeout (processed,
    then too late), 200 to the rest; processes each webhook-id at most once (idempotent)."""

    rng: random.Random
    secret: str = ""
    url: str = ""
    seen: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # id → answers in order
    accepted: dict[str, int] = field(default_factory=dict)  # id → times processed (idempotent: 1)
    duplicates: int = 0  # deliveries of an id already processed, acknowledged without processing
    forged: int = 0

    def app(self, ready: asyncio.Event) -> Starlette:
        async def hook(request: Request) -> Response:
            body, headers = await request.body(), dict(request.headers)
            try:
                Webhook(self.secret).verify(body, headers)
            except Exception:
                self.forged += 1
                return PlainTextResponse("bad signature", status_code=401)
            webhook_id, roll = headers["webhook-id"], self.rng.random()
            if roll < 0.5:
                self.seen[webhook_id].append("500")
                return PlainTextResponse("flaky", status_code=500)
            if webhook_id in self.accepted:
                self.duplicates += 1  # seen before: acknowledged, not processed again
            else:
                self.accepted[webhook_id] = 1
            if roll < 0.6:
                self.seen[webhook_id].append("timeout")
                await asyncio.sleep(TIMEOUT_S * 3)  # the slow server the sender gives up on
                return PlainTextResponse("too late")
            self.seen[webhook_id].append("200")
            return PlainTextResponse("ok")

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            ready.set()
            yield

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])], lifespan=lifespan)


@pytest_asyncio.fixture(loop_scope="session")
async def flaky(serve_asgi: ServeAsgi) -> AsyncIterator[FlakyReceiver]:
    receiver, ready = FlakyReceiver(random.Random(7)), asyncio.Event()
    async with serve_asgi(receiver.app(ready), ready) as base_url:
        receiver.url = f"{base_url}/hook"
        yield receiver


async def _all_pages(service: Service, path: str) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        page = await service.get(
            path + ("&" if "?" in path else "?") + "limit=200" + (f"&cursor={cursor}" if cursor else "")
        )
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


async def test_a_flaky_receiver_gets_every_event_exactly_once_after_recovery(
    service: Service, flaky: FlakyReceiver
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    sub = await service.subscribe_url(flaky.url)
    flaky.secret = sub["secret"]
    shipments = [service.number() for _ in range(10)]
    events = [
        service.tracking(number, status, substatus)
        for number in shipments
        for status, substatus in [
            (Status.IN_TRANSIT, "in_transit.picked_up"),
            (Status.OUT_FOR_DELIVERY, "out_for_delivery"),
            (Status.DELIVERED, "delivered.signed"),
        ]
    ]
    for event in events:
        await service.publish(event)
    messages_path = f"/v1/subscriptions/{sub['id']}/messages"

    async def settled() -> list[dict[str, Any]] | None:
        messages = await _all_pages(service, messages_path)
        done = len(messages) == len(events) and all(m["status"] != "pending" for m in messages)
        return messages if done else None

    recoveries = 0
    while True:
        messages = await wait_until(settled, timeout=40, message="every message delivered or failed")
        if all(m["status"] == "delivered" for m in messages):
            break
        recoveries += 1
        assert recoveries <= 6, "recovery does not converge"
        answer = await service.api.post(
            f"/v1/subscriptions/{sub['id']}/recover",
            json={"since": started.isoformat()},
            headers=service.auth(),
        )
        assert answer.status_code == 202 and answer.json()["recovered"] >= 1, answer.text

    ids = {m["id"] for m in messages}
    assert {m["event_id"] for m in messages} == {e.id for e in events}
    assert set(flaky.accepted) == ids and set(flaky.accepted.values()) == {1}  # each exactly once
    assert flaky.forged == 0
    answers = [a for seen in flaky.seen.values() for a in seen]
    assert answers.count("500") > 0 and answers.count("timeout") > 0  # the receiver was really flaky

    attempts = await _all_pages(service, f"/v1/subscriptions/{sub['id']}/attempts")
    logged: dict[str, list[str]] = defaultdict(list)
    for attempt in sorted(attempts, key=lambda a: (a["message_id"], a["attempt_number"])):
        logged[attempt["message_id"]].append(
            "timeout" if attempt["error"] == "timeout" else str(attempt["status_code"])
        )
    assert logged == flaky.seen  # every request the receiver saw, and nothing else, in order
    print(
        f"\nflaky receiver: {len(events)} events, {len(attempts)} attempts "
        f"({answers.count('500')} × 500, {answers.count('timeout')} timeouts), {flaky.duplicates} duplicate "
        f"deliveries absorbed, {recoveries} recover call(s)"
    )


async def queue(db: Any, url: str, count: int, *, prefix: str) -> tuple[str, str]:
    secret = generate_secret()
    sub = await repo.insert_subscription(
        db, tenant_id="acme", url=url, event_types=["*"], description=None, secret=secret, enabled=True
    )
    async with db.acquire() as conn, conn.transaction():
        for i in range(count):
            await repo.insert_messages(
                conn, [sub.id], tenant_id="acme", event_id=f"{prefix}{i}", event_type="tracking.delivered",
                ordering_key=f"acme/{prefix}{i}", body=b'{"type":"tracking.delivered","data":{}}',
            )  # fmt: skip
    return sub.id, secret


async def test_a_restart_in_the_middle_of_a_retry_schedule_loses_nothing(
    pool: tuple[Any, str], settings: Settings, receiver: Receiver
) -> None:
    db = pool[0]
    endpoint = receiver.endpoint(503, 503)
    _, endpoint.secret = await queue(db, endpoint.url, 1, prefix="restart")
    s = settings(RASTRO_NOTIFICATION_RETRY_SCHEDULE="1,1,1")
    first = Dispatcher(s)
    task = asyncio.create_task(first.serve(db))

    async def waiting_for_retry() -> bool:
        row = await db.fetchrow("SELECT status, attempts, next_attempt_at > now() AS later FROM messages")
        return tuple(row) == ("pending", 1, True)

    await wait_until(waiting_for_retry, message="first attempt failed, retry scheduled")
    task.cancel()  # the process dies between two attempts of the schedule
    await asyncio.gather(task, return_exceptions=True)

    second = Dispatcher(s)
    task = asyncio.create_task(second.serve(db))
    try:
        await wait_until(
            lambda: db.fetchval("SELECT status = 'delivered' FROM messages"),
            message="delivered after restart",
        )
    finally:
        await second.stop()
        await task
    assert [r.verified for r in endpoint.requests] == [True, True, True]
    assert len({r.webhook_id for r in endpoint.requests}) == 1
    rows = await db.fetch("SELECT attempt_number, status_code FROM attempts ORDER BY attempt_number")
    assert [tuple(r) for r in rows] == [(1, 503), (2, 503), (3, 200)]


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def _healthy_latencies(db: Any, receiver: Receiver, count: int, *, prefix: str) -> list[float]:
    """Queue ``count`` messages to a fresh healthy endpoint 10 ms apart; seconds from commit to arrival."""
    endpoint = receiver.endpoint()
    sub = await repo.insert_subscription(
        db, tenant_id="acme", url=endpoint.url, event_types=["*"], description=None,
        secret=generate_secret(), enabled=True,
    )  # fmt: skip
    queued: dict[str, float] = {}
    for i in range(count):
        async with db.acquire() as conn, conn.transaction():
            await repo.insert_messages(
                conn, [sub.id], tenant_id="acme", event_id=f"{prefix}{i}", event_type="tracking.delivered",
                ordering_key=f"acme/{prefix}{i}", body=b'{"type":"tracking.delivered","data":{}}',
            )  # fmt: skip
        queued[f"{prefix}{i}"] = time.monotonic()
        await asyncio.sleep(0.01)  # pacing the load, not waiting for a result
    await wait_until(lambda: len(endpoint.requests) >= count, timeout=30, message="healthy deliveries")
    ids = dict(await db.fetch("SELECT id, event_id FROM messages WHERE subscription_id = $1", sub.id))
    return [r.at - queued[ids[r.webhook_id]] for r in endpoint.requests]


@pytest.mark.parametrize("breaker", ["on", "off"])
async def test_a_dead_endpoint_does_not_slow_a_healthy_one(
    pool: tuple[Any, str], settings: Settings, receiver: Receiver, breaker: str
) -> None:
    db = pool[0]
    failures = 5 if breaker == "on" else 1_000_000
    s = settings(
        RASTRO_NOTIFICATION_RETRY_SCHEDULE="0.05,0.05,0.05", RASTRO_NOTIFICATION_BREAKER_FAILURES=failures
    )
    dispatcher = Dispatcher(s)
    task = asyncio.create_task(dispatcher.serve(db))
    try:
        alone = await _healthy_latencies(db, receiver, 100, prefix=f"alone{breaker}")
        await queue(db, f"http://127.0.0.1:{free_port()}/dead", 300, prefix=f"dead{breaker}")
        beside = await _healthy_latencies(db, receiver, 100, prefix=f"beside{breaker}")
        dead_attempts = await db.fetchval("SELECT count(*) FROM attempts WHERE status_code IS NULL")
    finally:
        await dispatcher.stop()
        await task
    p50a, p99a, p50b, p99b = (
        1000 * _percentile(v, q) for v, q in ((alone, 50), (alone, 99), (beside, 50), (beside, 99))
    )
    print(
        f"\nbreaker {breaker}: healthy endpoint p50/p99 {p50a:.1f}/{p99a:.1f} ms alone, "
        f"{p50b:.1f}/{p99b:.1f} ms beside a dead endpoint with 300 queued ({dead_attempts} refused attempts)"
    )
    assert dead_attempts > 0
    assert p99b < max(3 * p99a, p99a + 250)  # noisy shared machine: a generous bound, the figures are printed
