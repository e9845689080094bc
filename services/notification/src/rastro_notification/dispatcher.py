"""The dispatcher: sends due messages, one attempt at a time per message, and records every attempt.

It runs as a background task of the service. It wakes on ``LISTEN <schema>_messages`` (a new or resent
message, a re-enabled subscription), when one of its own deliveries finishes (which may free an
endpoint's slot or the next message of a shipment), and otherwise at the next due time, polling at
least every ``poll_interval_s``. What may be claimed, leases and ordering: ``adapters.delivery_queue``.

Concurrency: at most ``max_concurrency`` deliveries in flight in this process, and at most
``per_endpoint_concurrency`` per subscription across every instance, so a slow or dead endpoint holds a
few slots and never the whole dispatcher. After ``breaker_failures`` retryable failures in a row an
endpoint's circuit opens and its messages are parked (not even scanned) until a single probe may go
(``domain.endpoint_health``).

Stopping: ``stop()`` stops claiming, lets deliveries in flight finish for a grace period, then cancels
the rest and gives their claims back. A process that dies instead leaves its claims to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg

from rastro_kit.db import DB_UNAVAILABLE
from rastro_kit.logs import get_logger
from rastro_kit.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_LATENCY
from rastro_kit.service import Runtime
from rastro_notification.adapters.delivery_queue import (
    AttemptRecord,
    Claim,
    Recorded,
    claim_due,
    record_attempts,
    release,
    seconds_until_next_due,
)
from rastro_notification.adapters.webhook_sender import WebhookSender, new_webhook_session
from rastro_notification.domain.message_lifecycle import MessageStatus, after_attempt
from rastro_notification.metrics import ENDPOINTS_AUTO_DISABLED
from rastro_notification.settings import NotificationSettings

__all__ = ["Dispatcher", "new_http_client"]

log = get_logger(__name__)
# OperatorInterventionError covers an administrator's or a failover's shutdown of our backend.
_DB_DOWN = DB_UNAVAILABLE
USER_AGENT = "Rastro-Webhooks/0.1"
RECORD_BATCH = 500  # attempts recorded in one transaction at most


def new_http_client(settings: NotificationSettings) -> aiohttp.ClientSession:
    """The one HTTP session every delivery of this process shares (``webhook_sender.new_webhook_session``:
    no proxies, redirects, cookies or DNS cache; connections go to the addresses the SSRF check approved)."""
    return new_webhook_session(settings.max_concurrency, user_agent=USER_AGENT)


class Dispatcher:
    def __init__(
        self,
        settings: NotificationSettings,
        *,
        client_factory: Callable[[NotificationSettings], aiohttp.ClientSession] = new_http_client,
        rng: random.Random | None = None,
        grace_s: float = 5.0,
    ) -> None:
        self._settings = settings
        self._schedule = settings.schedule
        self._breaker = settings.breaker
        self._client_factory = client_factory
        self._rng = rng or random.Random()
        self._grace_s = grace_s
        self._wake = asyncio.Event()
        self._inflight: dict[asyncio.Task[None], Claim] = {}
        self._stopping = False
        self._done = asyncio.Event()
        self._started = False
        self.claim_rounds = 0  # how many times it looked for due messages
        self._listen_pool: Any = None
        # Finished attempts waiting for the recorder, each with the future its delivery awaits.
        self._to_record: list[tuple[AttemptRecord, asyncio.Future[Recorded]]] = []
        self._record_wake = asyncio.Event()
        self.record_batches = 0  # how many transactions recorded attempts

    async def run(self, runtime: Runtime) -> None:
        """The ``background`` entry point of the service definition."""
        await self.serve(runtime.pool, listen_pool=runtime.session_pool)

    async def serve(self, pool: Any, *, listen_pool: Any = None) -> None:
        """``listen_pool`` (default ``pool``) holds the LISTEN connection: a real session, never one
        through a transaction pooler, where notifications would go to whoever has the server next."""
        self._started, self._done = True, asyncio.Event()
        self._listen_pool = listen_pool if listen_pool is not None else pool
        graceful = False
        recorder = asyncio.create_task(self._recorder(pool), name="attempt-recorder")
        try:
            async with self._client_factory(self._settings) as client:
                sender = WebhookSender(
                    client,
                    timeout_s=self._settings.request_timeout_s,
                    allow_private=self._settings.private_urls_allowed,
                    require_https=self._settings.require_https,
                )
                await self._serve_until_stopped(pool, sender)
                graceful = True
                await self._wind_down(pool)
        finally:
            if not graceful:  # cancelled or crashed: in-flight claims are left to expire
                await _cancel_all(self._inflight)
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)
            self._done.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._started:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), self._grace_s + 5)

    async def _serve_until_stopped(self, pool: Any, sender: WebhookSender) -> None:
        backoff = 0.5
        while not self._stopping:
            rounds = self.claim_rounds
            try:
                await self._listen_and_dispatch(pool, sender)
            except _DB_DOWN as exc:
                if self.claim_rounds > rounds:  # it worked for a while: a new outage starts short
                    backoff = 0.5
                log.warning("dispatcher_db_unavailable", error=repr(exc), retry_in_s=backoff)
                # A wake left set (the lost LISTEN connection's termination callback sets it) would end
                # every backoff at once: a reconnect loop as fast as the CPU allows, for the whole outage.
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), backoff)
                backoff = min(backoff * 2, 30.0)

    async def _listen_and_dispatch(self, pool: Any, sender: WebhookSender) -> None:
        channel = self._settings.notify_channel
        async with self._listen_pool.acquire() as listener:
            await listener.add_listener(channel, self._on_notify)
            listener.add_termination_listener(self._on_notify)
            try:
                while not self._stopping:
                    if listener.is_closed():  # NOTIFYs would be lost: reconnect, as for an outage
                        raise ConnectionResetError("the LISTEN connection was closed")
                    self._wake.clear()  # before claiming: a NOTIFY during the claim is not lost
                    free = self._settings.max_concurrency - len(self._inflight)
                    claims = await claim_due(
                        pool,
                        limit=free,
                        per_endpoint=self._settings.per_endpoint_concurrency,
                        lease_s=self._settings.claim_lease_s,
                        half_open_after=self._breaker.failure_threshold,
                    )
                    self.claim_rounds += 1
                    for claim in claims:
                        self._spawn(pool, sender, claim)
                    if free > 0 and len(claims) == free:
                        continue  # there may be more due right now
                    await self._sleep(pool, idle=free > 0)
            finally:
                listener.remove_termination_listener(self._on_notify)  # a pool reset keeps these
                with contextlib.suppress(*_DB_DOWN):
                    await listener.remove_listener(channel, self._on_notify)

    async def _sleep(self, pool: Any, *, idle: bool) -> None:
        timeout = self._settings.poll_interval_s
        if idle:
            until_due = await seconds_until_next_due(pool)
            if until_due is not None:
                timeout = min(timeout, max(until_due, 0.01))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    def _spawn(self, pool: Any, sender: WebhookSender, claim: Claim) -> None:
        task = asyncio.create_task(self._deliver(pool, sender, claim), name=f"deliver-{claim.message_id}")
        self._inflight[task] = claim
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        claim = self._inflight.pop(task, None)
        self._wake.set()
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug, not the endpoint: the claim's lease runs out and the message is tried again.
            log.error(
                "delivery_crashed",
                message_id=claim.message_id if claim else None,
                error=repr(exc),
                exc_info=exc,
            )

    async def _deliver(self, pool: Any, sender: WebhookSender, claim: Claim) -> None:
        attempted_at = datetime.now(UTC)
        result = await sender.send(
            claim.url,
            claim.message_id,
            int(attempted_at.timestamp()),
            claim.body,
            claim.secrets,
            claim.headers,
        )
        WEBHOOK_ATTEMPTS.labels(result.outcome.value).inc()
        if result.latency_ms > 0:
            WEBHOOK_LATENCY.observe(result.latency_ms / 1000)
        transition = after_attempt(result, claim.attempt_in_round, self._schedule, self._rng)
        try:
            recorded = await self._record(AttemptRecord(claim, result, transition, attempted_at))
        except _DB_DOWN as exc:  # the lease runs out and the message is sent again: at least once
            log.warning("attempt_not_recorded", message_id=claim.message_id, error=repr(exc))
            return
        log.info(
            "webhook_attempt",
            message_id=claim.message_id,
            subscription_id=claim.subscription_id,
            attempt=claim.attempt_number,
            outcome=result.outcome.value,
            status_code=result.status_code,
            error=result.error,
            latency_ms=round(result.latency_ms, 1),
            message_status=transition.status.value,
            retry_in_s=transition.retry_in_s,
        )
        if not recorded.kept:
            log.warning("claim_lost", message_id=claim.message_id, claim_id=claim.claim_id)
        health = recorded.health
        if health is not None and health.disabled_now:
            ENDPOINTS_AUTO_DISABLED.labels(health.health.disabled_reason or "").inc()
            log.warning(
                "subscription_disabled",
                subscription_id=claim.subscription_id,
                reason=health.health.disabled_reason,
            )
        elif health is not None and health.circuit_opened:
            log.warning(
                "circuit_opened",
                subscription_id=claim.subscription_id,
                consecutive_failures=health.health.consecutive_failures,
                until=str(health.health.circuit_open_until),
            )
        if transition.status is MessageStatus.FAILED:
            log.warning("message_failed", message_id=claim.message_id, reason=transition.reason)

    def _record(self, record: AttemptRecord) -> asyncio.Future[Recorded]:
        """Hand a finished attempt to the recorder; the future is done once its transaction committed."""
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._to_record.append((record, future))
        self._record_wake.set()
        return future

    async def _recorder(self, pool: Any) -> None:
        """Group commit: every attempt that finished while the previous transaction ran is recorded in
        the next one (``record_attempts``), so a busy dispatcher commits a few times per round trip of
        the database instead of once per delivery. A delivery's slot stays taken until its attempt is
        recorded, so what is claimed next always sees it."""
        try:
            while True:
                await self._record_wake.wait()
                self._record_wake.clear()
                while self._to_record:
                    batch, self._to_record = self._to_record[:RECORD_BATCH], self._to_record[RECORD_BATCH:]
                    try:
                        recorded = await self._record_batch(pool, [r for r, _ in batch])
                    except Exception as exc:  # each delivery decides what it means (``_deliver``)
                        for _, future in batch:
                            if not future.done():
                                future.set_exception(exc)
                        continue
                    self.record_batches += 1
                    for (_, future), outcome in zip(batch, recorded, strict=True):
                        if not future.done():
                            future.set_result(outcome)
        finally:  # stopped: whoever still waits is told, not left hanging
            for _, future in self._to_record:
                if not future.done():
                    future.set_exception(ConnectionAbortedError("the attempt recorder stopped"))
            self._to_record = []

    async def _record_batch(self, pool: Any, records: list[AttemptRecord]) -> list[Recorded]:
        """``record_attempts``, tried again (up to three times) when Postgres picked it as a deadlock
        victim or could not serialize it: the records are still valid, only the transaction lost."""
        for attempt in range(3):
            try:
                return await record_attempts(pool, records, self._breaker)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
                log.warning("attempts_record_retry", count=len(records), error=repr(exc), attempt=attempt + 1)
        return await record_attempts(pool, records, self._breaker)

    async def _wind_down(self, pool: Any) -> None:
        if not self._inflight:
            return
        _, pending = await asyncio.wait(set(self._inflight), timeout=self._grace_s)
        unfinished = [self._inflight[t] for t in pending if t in self._inflight]
        await _cancel_all({t: self._inflight[t] for t in pending if t in self._inflight})
        try:
            await release(pool, unfinished)
        except _DB_DOWN as exc:
            log.warning("claims_not_released", count=len(unfinished), error=repr(exc))
        if unfinished:
            log.info("claims_released", count=len(unfinished))


async def _cancel_all(tasks: dict[asyncio.Task[None], Claim]) -> None:
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
