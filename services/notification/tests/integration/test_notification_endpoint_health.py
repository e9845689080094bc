"""Circuit breaker, auto-disable with the owner's alert, rate limit, custom headers, secret rotation,
recover and the retention purge — the dispatchers against a real Postgres, real receivers and a real
SMTP server (no broker needed: messages are queued with the consumer's own repository call).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from standardwebhooks.webhooks import Webhook

from rastro_kit.testing import free_port, wait_until
from rastro_notification.adapters import message_log
from rastro_notification.adapters import repository as repo
from rastro_notification.dispatcher import Dispatcher
from rastro_notification.domain.signing import generate_secret
from rastro_notification.events import ENDPOINTS_TOPIC
from rastro_notification.housekeeping import Housekeeping
from rastro_notification.notice_dispatcher import NoticeDispatcher
from rastro_notification.settings import NotificationSettings

if TYPE_CHECKING:
    from conftest import Mailbox, Receiver

pytestmark = pytest.mark.integration
Settings = Callable[..., NotificationSettings]


async def subscribe(db: Any, url: str, **extra: Any) -> repo.Subscription:
    return await repo.insert_subscription(
        db, tenant_id="acme", url=url, event_types=["*"], description=None, secret=generate_secret(),
        enabled=True, **extra,
    )  # fmt: skip


async def queue(db: Any, sub_id: str, count: int, *, start: int = 0) -> None:
    async with db.acquire() as conn, conn.transaction():
        for i in range(start, start + count):
            body = (
                b'{"type":"tracking.delivered","timestamp":"2026-11-23T14:05:11-03:00","data":{"n":%d}}' % i
            )
            await repo.insert_messages(
                conn, [sub_id], tenant_id="acme", event_id=f"evt{sub_id}{i}", event_type="tracking.delivered",
                ordering_key=f"acme/T{i}", body=body,
            )  # fmt: skip


@asynccontextmanager
async def running(dispatcher: Dispatcher | NoticeDispatcher, db: Any) -> AsyncIterator[None]:
    task = asyncio.create_task(dispatcher.serve(db))
    try:
        yield
    finally:
        if isinstance(dispatcher, Dispatcher):
            await dispatcher.stop()
        else:
            dispatcher.stop()
        await task


async def attempts(db: Any, sub_id: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM attempts WHERE subscription_id = $1", sub_id))


async def test_a_dead_endpoint_trips_the_breaker_is_probed_and_recovers(
    pool: tuple[Any, str], settings: Settings, receiver: Receiver
) -> None:
    db = pool[0]
    sub = await subscribe(db, f"http://127.0.0.1:{free_port()}/dead")  # connection refused
    await queue(db, sub.id, 6)
    dispatcher = Dispatcher(
        settings(
            RASTRO_NOTIFICATION_BREAKER_FAILURES=3,
            RASTRO_NOTIFICATION_BREAKER_OPEN_S=30,
            RASTRO_NOTIFICATION_RETRY_SCHEDULE="0.05,0.05,0.05,0.05,0.05,0.05",
            RASTRO_NOTIFICATION_PER_ENDPOINT_CONCURRENCY=2,
        )
    )
    async with running(dispatcher, db):

        async def circuit_open() -> bool:
            return bool(await db.fetchval("SELECT circuit_open_until > now() FROM subscriptions"))

        await wait_until(circuit_open, message="the circuit opens")
        parked = await attempts(db, sub.id)
        assert 3 <= parked <= 4  # the threshold, plus at most one already in flight
        rounds = dispatcher.claim_rounds
        await wait_until(lambda: dispatcher.claim_rounds >= rounds + 5, message="more claim rounds")
        assert await attempts(db, sub.id) == parked  # parked: retries are due but nothing is sent
        shown = (await repo.get_subscription(db, sub.id, "acme")).public(with_secret=False)  # type: ignore[union-attr]
        assert shown["circuit"] == "open" and shown["consecutive_failures"] == parked

        # The cool-down ends: one probe, which fails and opens the circuit again, for longer.
        await db.execute("UPDATE subscriptions SET circuit_open_until = now()")
        await wait_until(circuit_open, message="the probe fails and the circuit opens again")
        assert await attempts(db, sub.id) == parked + 1
        until = await db.fetchval("SELECT circuit_open_until - now() FROM subscriptions")
        assert until > timedelta(seconds=45)  # doubled from 30 s

        # The endpoint is back: the next probe succeeds, the circuit closes, the backlog drains.
        healthy = receiver.endpoint()
        await db.execute("UPDATE subscriptions SET url = $1, circuit_open_until = now()", healthy.url)
        await wait_until(
            lambda: len({r.webhook_id for r in healthy.requests}) == 6, message="backlog drained"
        )
    row = await db.fetchrow("SELECT consecutive_failures, circuit_open_until, enabled FROM subscriptions")
    assert tuple(row) == (0, None, True)


async def test_failing_for_five_days_disables_and_tells_the_owner(
    pool: tuple[Any, str], settings: Settings, receiver: Receiver, mailbox: Mailbox
) -> None:
    db = pool[0]
    endpoint = receiver.endpoint(then=503)
    sub = await subscribe(db, endpoint.url)
    await db.execute("UPDATE subscriptions SET failing_since = now() - interval '5 days 1 minute'")
    await db.execute(
        "INSERT INTO notice_settings (tenant_id, alert_email, default_locale) VALUES ('acme', $1, 'en')",
        "ops@acme.example",
    )
    await queue(db, sub.id, 1)
    s = settings(RASTRO_NOTIFICATION_SMTP_HOST=mailbox.host, RASTRO_NOTIFICATION_SMTP_PORT=mailbox.port,
                 RASTRO_NOTIFICATION_SMTP_SECURITY="none")  # fmt: skip
    async with running(Dispatcher(s), db), running(NoticeDispatcher(s), db):
        await wait_until(lambda: mailbox.to("ops@acme.example"), message="the owner's e-mail")
    row = await db.fetchrow("SELECT enabled, disabled_reason, disabled_at FROM subscriptions")
    assert not row["enabled"] and row["disabled_reason"].startswith("failing_continuously: HTTP 503")
    assert row["disabled_at"] is not None
    [event] = await db.fetch("SELECT key, value FROM outbox WHERE topic = $1", ENDPOINTS_TOPIC)
    envelope = json.loads(event["value"])
    assert envelope["type"] == "rastro.notification.endpoint_disabled.v1"
    assert (
        envelope["data"]["subscription_id"] == sub.id and envelope["data"]["reason"] == "failing_continuously"
    )
    assert event["key"] == f"acme/{sub.id}".encode()
    [mail] = mailbox.to("ops@acme.example")
    assert sub.id in mail["Subject"] and "disabled" in mail["Subject"]
    assert endpoint.url in mail.get_content() and "/recover" in mail.get_content()
    # Its pending messages wait for it (none here: the one message failed on the last schedule step).
    assert len(endpoint.requests) == 1


async def test_the_rate_limit_spreads_sends(
    pool: tuple[Any, str], settings: Settings, receiver: Receiver
) -> None:
    db = pool[0]
    endpoint = receiver.endpoint()
    sub = await subscribe(db, endpoint.url, rate_limit_per_s=4.0)
    await queue(db, sub.id, 10)
    async with running(Dispatcher(settings(RASTRO_NOTIFICATION_PER_ENDPOINT_CONCURRENCY=10)), db):
        await wait_until(lambda: len(endpoint.requests) == 10, message="all ten")
    times = sorted(r.at for r in endpoint.requests)
    assert times[-1] - times[0] >= 1.2  # a burst of 4, then 6 more at 4/s ≈ 1.5 s
    assert sum(1 for t in times if t - times[0] < 0.15) <= 4  # the burst; the fifth waits ≈ 0.25 s


async def test_custom_headers_and_both_secrets_during_a_rotation(
    pool: tuple[Any, str], settings: Settings, receiver: Receiver
) -> None:
    db = pool[0]
    endpoint = receiver.endpoint()
    sub = await subscribe(db, endpoint.url, headers={"x-api-key": "k-123"})
    new_secret = generate_secret()
    rotated = await repo.rotate_secret(db, sub.id, "acme", new_secret, 3600)
    assert rotated is not None and rotated.public(with_secret=True)["previous_secret_expires_at"]
    await queue(db, sub.id, 1)
    async with running(Dispatcher(settings()), db):
        await wait_until(lambda: endpoint.requests, message="delivery")
    [request] = endpoint.requests
    assert request.headers["x-api-key"] == "k-123"
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (sub.secret, new_secret):  # a receiver on either secret verifies
        Webhook(secret).verify(request.body, request.headers)

    await db.execute("UPDATE subscriptions SET previous_secret_expires_at = now()")  # the overlap ends
    await queue(db, sub.id, 1, start=1)
    async with running(Dispatcher(settings()), db):
        await wait_until(lambda: len(endpoint.requests) == 2, message="second delivery")
    assert len(endpoint.requests[1].headers["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(endpoint.requests[1].body, endpoint.requests[1].headers)


async def test_recover_requeues_failed_messages_of_a_window(
    pool: tuple[Any, str], settings: Settings, receiver: Receiver
) -> None:
    db = pool[0]
    endpoint = receiver.endpoint(400, 400, 400)
    sub = await subscribe(db, endpoint.url)
    await queue(db, sub.id, 3)
    await db.execute("UPDATE messages SET created_at = now() - interval '2 hours' WHERE event_id LIKE '%0'")

    async def failed() -> bool:
        return await db.fetchval("SELECT count(*) FROM messages WHERE status = 'failed'") == 3

    async with running(Dispatcher(settings()), db):
        await wait_until(failed, message="all three failed (400 is final)")
        async with db.acquire() as conn, conn.transaction():
            now = datetime.now(UTC)
            count = await message_log.recover_messages(conn, sub.id, now - timedelta(hours=1), None)
        assert count == 2  # the third was created before the window
        await wait_until(lambda: len(endpoint.requests) == 5, message="the two again")
    statuses = dict(await db.fetch("SELECT event_id, status FROM messages"))
    assert sorted(statuses.values()) == ["delivered", "delivered", "failed"]
    assert len({r.webhook_id for r in endpoint.requests}) == 3  # same webhook-ids on the second round


async def test_the_purge_keeps_pending_and_recent_rows(pool: tuple[Any, str], settings: Settings) -> None:
    db = pool[0]
    sub = await subscribe(db, "http://127.0.0.1:9/unused")
    await queue(db, sub.id, 3)
    await db.execute(
        "UPDATE messages SET status = CASE WHEN event_id LIKE '%2' THEN 'pending' ELSE 'delivered' END,"
        " created_at = now() - interval '40 days', last_attempt_at = now() - interval '40 days'"
        " WHERE event_id NOT LIKE '%1'"
    )
    await db.execute("UPDATE messages SET status = 'delivered' WHERE event_id LIKE '%1'")
    await db.execute(
        "INSERT INTO recipients (tenant_id, tracking_number, email, updated_at) VALUES"
        " ('acme', 'OLD1BR', 'a@example.com', now() - interval '100 days'),"
        " ('acme', 'NEW1BR', 'b@example.com', now())"
    )
    counts = await Housekeeping(settings(RASTRO_NOTIFICATION_LOG_RETENTION_DAYS=30)).purge_once(db)
    assert counts is not None and counts["messages"] == 1 and counts["recipients"] == 1
    left = sorted(
        (r["event_id"][-1], r["status"]) for r in await db.fetch("SELECT event_id, status FROM messages")
    )
    assert left == [("1", "delivered"), ("2", "pending")]
    assert [r["tracking_number"] for r in await db.fetch("SELECT tracking_number FROM recipients")] == [
        "NEW1BR"
    ]
