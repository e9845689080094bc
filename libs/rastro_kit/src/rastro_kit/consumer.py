"""The consumer runner: effectively-once handling of Kafka records with a Postgres inbox and outbox.

For each batch of records from one partition (DESIGN §4):

1. one Postgres transaction is opened;
2. each record gets a savepoint: its event id goes into the inbox (a duplicate is skipped), the
   handler runs, and what it emits goes to the outbox in the same transaction;
3. a record that fails permanently is dead-lettered (an outbox row to ``rastro.<service>.dlq``, key,
   value and headers as received plus the ``rastro-dlq-*`` headers); one that fails transiently goes
   to the next retry tier (``rastro.<service>.retry.<n>``), then to the DLQ as ``retries_exhausted``.
   Either way its neighbours commit;
4. the transaction commits, and only then the Kafka offsets.

The common case takes a fast path: one inbox statement for the whole batch, no savepoints, and every
emitted event written in one round trip. A consumer may also give a *batch handler*, which receives all
the batch's new records at once (so it can load and write many rows per statement) and must have the
effect of its per-type handlers run one by one. If any record of the batch fails, the transaction is
rolled back and the batch is redone record by record with savepoints and the per-type handlers, as above.

A crash between 4's two steps re-delivers records whose effects are committed; the inbox skips them.
If Postgres itself is unreachable the whole batch is retried in place, with backoff: nothing is
dead-lettered for an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition

from rastro_events import Envelope, EventDecodeError, UnsupportedType, decode_event, model_for
from rastro_events.migrations import EventMigrations
from rastro_events.topics import replay_topic, retry_topic
from rastro_events.upcasting import older_majors_read_as, upcast_event
from rastro_kit.db import DB_UNAVAILABLE
from rastro_kit.errors import PermanentError, Reason, TransientError
from rastro_kit.failure_routing import FailureRouter, error_message, not_before
from rastro_kit.handler_context import BatchHandler, Handler, HandlerContext, RawHandler, RecordsFailed
from rastro_kit.logs import bind_event, get_logger, unbind_event
from rastro_kit.metrics import CONSUMER_PARTITIONS, EVENT_HANDLE_SECONDS, EVENTS_CONSUMED
from rastro_kit.outbox import enqueue_encoded

__all__ = ["BatchHandler", "ConsumerRunner", "Handler", "HandlerContext", "RawHandler", "RecordsFailed"]

log = get_logger(__name__)
_DB_DOWN = DB_UNAVAILABLE
_Outcome = tuple[str, str, float]  # topic, outcome, seconds


class _Isolate(Exception):
    """A record failed on the fast path: roll back and redo the batch with a savepoint per record."""


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._runner.release(revoked)
        log.info("partitions_revoked", group=self._runner.group_id, partitions=_names(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        runner = self._runner
        runner.assigned.set()
        CONSUMER_PARTITIONS.labels(runner.service, runner.group_id).set(len(assigned))
        log.info("partitions_assigned", group=runner.group_id, partitions=_names(assigned))


def _names(tps: Any) -> list[str]:
    return sorted(f"{tp.topic}:{tp.partition}" for tp in tps)


class ConsumerRunner:
    """Consumes ``topics`` (plus this consumer's retry tiers and replay topic) as one group.

    ``handlers`` maps CloudEvents types to typed handlers; a record of any other type is a dead letter
    (``unsupported_type``). ``raw_handler`` instead receives every record undecoded (the dead-letter
    store uses it); the inbox key is then topic:partition:offset:timestamp. ``batch_handler`` (with
    ``handlers`` only) takes the fast path's new records all at once; ``handlers`` still serve the
    isolated path.

    Older majors of a handled event that upcasters reach are read too (their topics added), and handed to
    the handler upcast. ``migrations`` (open windows, docs/upgrades.md) reaches ``HandlerContext.emit``,
    and turns a record of a window's major this consumer cannot read into a skipped twin, not a dead letter.

    A service with several groups (normalization: shipments, and the geofence processor) shares its retry
    tiers and replay topic between them: ``sibling_types`` are the types the others handle, skipped
    there (``sibling_skipped``) rather than dead-lettered as ``unsupported_type``.
    """

    def __init__(
        self,
        *,
        service: str,
        group_id: str,
        topics: Sequence[str],
        pool: Any,
        consumer_factory: Callable[..., AIOKafkaConsumer],
        handlers: Mapping[str, Handler] | None = None,
        raw_handler: RawHandler | None = None,
        retry_delays_s: Sequence[float] = (10.0, 60.0, 600.0),
        topic_pattern: str | None = None,
        max_records: int = 500,
        batch_handler: BatchHandler | None = None,
        migrations: EventMigrations | None = None,
        sibling_types: Collection[str] = (),
    ) -> None:
        if (handlers is None) == (raw_handler is None):
            raise ValueError("give exactly one of handlers or raw_handler")
        if batch_handler is not None and handlers is None:
            raise ValueError("a batch handler needs the per-type handlers for the isolated path")
        self._batch_handler = batch_handler
        self.service, self.group_id, self._pool = service, group_id, pool
        self._handlers = dict(handlers or {})
        # Older majors read through upcasters: empty (nothing to do per record) unless an event has several.
        self._read_as = older_majors_read_as(self._handlers)
        self._accept = frozenset(self._handlers) | frozenset(self._read_as)
        self.migrations = migrations or None  # replaceable: a redeploy with other windows, in tests
        self._raw_handler = raw_handler
        self._delays = tuple(retry_delays_s)
        self._failures = FailureRouter(service, group_id, self._delays)
        self._retry_topics = [retry_topic(service, n) for n in range(1, len(self._delays) + 1)]
        older = [m.topic for t in self._read_as if (m := model_for(t)) is not None]
        self.topics = tuple(dict.fromkeys([*topics, *older]))  # the main topics, without retries/replay
        self._topics = [*self.topics, replay_topic(service), *self._retry_topics]
        # Types another consumer group of this service handles: on the retry tiers and the replay topic,
        # which the service's groups share, such a record is that group's, not a dead letter here.
        self._sibling_types = frozenset(sibling_types)
        self._shared = frozenset([replay_topic(service), *self._retry_topics])
        # A pattern consumer still owns its retry tiers and replay topic: fold them into the pattern.
        own = rf"^rastro\.{re.escape(service)}\.(?:retry\.\d+|replay)$"
        self._pattern = f"(?:{topic_pattern})|(?:{own})" if topic_pattern else None
        self._factory = consumer_factory
        self._max_records = max_records
        self._consumer: AIOKafkaConsumer | None = None
        self._paused_until: dict[TopicPartition, float] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._handle_seconds_of: dict[str, Any] = {}
        # Records fetched and not yet handled, per partition, each drained by its own worker task.
        self._queues: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        self._workers: dict[TopicPartition, asyncio.Task[None]] = {}
        self._queued = 0
        self._room = asyncio.Event()
        self._room.set()
        self._failure: BaseException | None = None
        self._stopping = False
        self.assigned = asyncio.Event()
        self.running = False
        # Test seam: awaited between the DB commit and the offset commit.
        self.after_db_commit: Callable[[], Awaitable[None]] | None = None

    async def run(self) -> None:
        consumer = self._factory(group_id=self.group_id)
        listener = _Listener(self)
        if self._pattern:
            consumer.subscribe(pattern=self._pattern, listener=listener)
        else:
            consumer.subscribe(topics=self._topics, listener=listener)
        await consumer.start()
        self._consumer, self.running = consumer, True
        log.info("consumer_started", group=self.group_id, topics=self._pattern or self._topics)
        try:
            while not self._stopping and self._failure is None:
                self._resume_due()
                if not self._room.is_set():  # enough fetched and waiting: let the workers catch up
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._room.wait(), 0.5)
                    continue
                batches = await consumer.getmany(timeout_ms=500, max_records=self._max_records)
                for tp, records in batches.items():
                    self._enqueue(consumer, tp, records)
        finally:
            self.running = False
            self._stopping = True  # workers finish the batch they hold, then stop
            workers = list(self._workers.values())
            try:
                await asyncio.gather(*workers, return_exceptions=True)
                log.info("consumer_stopped", group=self.group_id, batches_finished=len(workers))
            except asyncio.CancelledError:  # cancelled, not stopped: the batches in flight go too
                for worker in workers:
                    worker.cancel()
                raise
            finally:
                await consumer.stop()
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        self._stopping = True

    @property
    def queued(self) -> int:
        """Records fetched and waiting for their partition's worker."""
        return self._queued

    # -- partitions, each drained by its own worker --------------------------------------------------
    #
    # Partitions are independent streams: each has a worker task that handles its records batch after
    # batch, each batch in its own transaction on its own connection, while the loop above keeps
    # fetching for the others. Order holds within a partition (one worker, in offset order); Python
    # work on one partition overlaps Postgres round trips of the others.

    def _enqueue(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        self._queues.setdefault(tp, []).extend(records)
        self._queued += len(records)
        if self._queued >= self._max_queued:
            self._room.clear()
        if tp not in self._workers:
            self._workers[tp] = asyncio.create_task(self._work(consumer, tp))

    @property
    def _max_queued(self) -> int:
        return 4 * self._max_records

    def _take(self, tp: TopicPartition, count: int | None = None) -> list[ConsumerRecord[bytes, bytes]]:
        queue = self._queues.get(tp, [])
        taken = queue[:count] if count is not None else list(queue)
        del queue[: len(taken)]
        self._queued -= len(taken)
        if self._queued < self._max_queued:
            self._room.set()
        return taken

    async def _work(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        try:
            while not self._stopping and self._failure is None and self._queues.get(tp):
                await self._process_partition(consumer, tp, self._take(tp, self._max_records))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaced by run(), once every worker finished its batch
            if self._failure is None:
                self._failure = exc
        finally:
            del self._workers[tp]

    async def release(self, revoked: Any) -> None:
        """A rebalance takes partitions away: drop what was fetched for them, and let the batches in
        flight commit first (their offsets included), so the next owner starts where they ended."""
        gone = set(revoked)
        for tp in gone:
            self._take(tp)
            self._queues.pop(tp, None)
        busy = [task for tp, task in self._workers.items() if tp in gone]
        await asyncio.gather(*busy, return_exceptions=True)

    # -- one partition's batch -------------------------------------------------------------------

    async def _process_partition(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        due, not_due = self._split_due(records)
        if not_due is not None:
            self._take(tp)  # fetched after the one not due yet: read again once it is
            consumer.seek(tp, not_due.offset)
            consumer.pause(tp)
            self._paused_until[tp] = not_before(not_due)
        if not due:
            return
        outcomes = await self._commit_batch(tp, due)
        if outcomes is None:
            return
        counts: Counter[tuple[str, str]] = Counter()
        for topic, outcome, seconds in outcomes:
            counts[topic, outcome.split(":")[0]] += 1
            self._handle_seconds(topic).observe(seconds)
        for (topic, kind), n in counts.items():  # one labelled child per kind, not per record
            EVENTS_CONSUMED.labels(self.service, topic, kind).inc(n)
        self._positions[tp] = due[-1].offset + 1
        if self.after_db_commit is not None:
            await self.after_db_commit()
        try:
            await consumer.commit({tp: due[-1].offset + 1})
        except Exception as exc:  # a rebalance took the partition: the new owner's inbox dedups
            log.warning("offset_commit_failed", error=repr(exc), topic=tp.topic, partition=tp.partition)

    def _handle_seconds(self, topic: str) -> Any:
        child = self._handle_seconds_of.get(topic)
        if child is None:
            child = self._handle_seconds_of[topic] = EVENT_HANDLE_SECONDS.labels(self.service, topic)
        return child

    async def _commit_batch(self, tp: TopicPartition, due: list[Any]) -> list[_Outcome] | None:
        """Handle ``due`` in one transaction until it commits; None if stopped during an outage."""
        backoff, isolated = 0.5, False
        while True:
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    if isolated:
                        return [await self._process_record(conn, record) for record in due]
                    return await self._process_fast(conn, due)
            except _Isolate:
                isolated = True  # the transaction rolled back; redo the batch record by record
            except (*_DB_DOWN, asyncpg.TransactionRollbackError) as exc:
                # An outage, or a deadlock/serialization failure with a concurrent batch: nothing of
                # this batch was committed, so run it again.
                if self._stopping:
                    return None
                log.warning("consumer_batch_retry", error=repr(exc), retry_in_s=backoff, topic=tp.topic)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)

    async def _process_fast(self, conn: Any, due: list[ConsumerRecord[bytes, bytes]]) -> list[_Outcome]:
        """Every record succeeds, or ``_Isolate`` is raised. Undecodable records are dead-lettered here:
        they wrote nothing before failing, so they need no savepoint."""
        m = self.migrations
        contexts = [HandlerContext(conn=conn, service=self.service, record=r, migrations=m) for r in due]
        decoded: list[str | EventDecodeError] = []
        bind = self._batch_handler is None  # a batch is handled as one: no per-record log context
        for ctx in contexts:
            try:
                decoded.append(self._decode(ctx, bind=bind))
            except EventDecodeError as exc:
                decoded.append(exc)
            finally:
                if bind:
                    unbind_event()
        fresh = await self._claim_many(conn, [d for d in decoded if isinstance(d, str)])
        if self._batch_handler is not None:
            return await self._process_fast_batch(conn, contexts, decoded, fresh, self._batch_handler)
        outcomes: list[_Outcome] = []
        for ctx, event_id in zip(contexts, decoded, strict=True):
            started = time.perf_counter()
            outcome = await self._handle_fast(conn, ctx, event_id, fresh)
            outcomes.append((ctx.record.topic, outcome, time.perf_counter() - started))
        emitted = [e for ctx in contexts for e in ctx.emitted]
        if emitted:
            await enqueue_encoded(conn, emitted)
        return outcomes

    async def _process_fast_batch(
        self,
        conn: Any,
        contexts: list[HandlerContext],
        decoded: list[str | EventDecodeError],
        fresh: set[str],
        batch_handler: BatchHandler,
    ) -> list[_Outcome]:
        """The fast path with a batch handler: it gets every new record at once."""
        outcomes: list[_Outcome] = []
        work: list[HandlerContext] = []
        for ctx, event_id in zip(contexts, decoded, strict=True):
            if isinstance(event_id, EventDecodeError):
                outcome = await self._undecodable(conn, ctx.record, event_id)
            elif event_id not in fresh:
                outcome = "duplicate"
            else:
                fresh.discard(event_id)  # the same id twice in one batch: the second is a duplicate
                outcome = "processed"
                work.append(ctx)
            outcomes.append((ctx.record.topic, outcome, 0.0))
        started = time.perf_counter()
        position = {id(ctx): i for i, ctx in enumerate(contexts)}
        while work:
            try:
                await batch_handler(conn, work)
                break
            except (*_DB_DOWN, asyncpg.TransactionRollbackError):
                raise
            except RecordsFailed as failed:
                failures = {i: exc for i, exc in failed.failures.items() if 0 <= i < len(work)}
                if not failures or any(
                    isinstance(e, (*_DB_DOWN, asyncpg.TransactionRollbackError)) for e in failures.values()
                ):
                    raise _Isolate from None
                await self._unclaim(conn, [_event_id(work[i]) for i in failures])
                for i, exc in sorted(failures.items()):
                    record = work[i].record
                    outcome = await self._route(conn, record, exc)
                    outcomes[position[id(work[i])]] = (record.topic, outcome, 0.0)
                work = [ctx for i, ctx in enumerate(work) if i not in failures]
                for ctx in work:
                    ctx.emitted.clear()  # it is run again: only what the next run emits counts
            except Exception as exc:
                log.info("consumer_batch_isolated", error=repr(exc)[:200], records=len(work))
                raise _Isolate from None
        if work:
            share = (time.perf_counter() - started) / len(work)
            outcomes = [(t, o, share if o == "processed" else s) for t, o, s in outcomes]
            emitted = [e for ctx in work for e in ctx.emitted]
            if emitted:
                await enqueue_encoded(conn, emitted)
        return outcomes

    async def _unclaim(self, conn: Any, event_ids: list[str]) -> None:
        """A record that failed leaves the inbox, as its rolled-back savepoint would: a replay is new."""
        await conn.execute(
            "DELETE FROM inbox WHERE consumer_group = $1 AND event_id = ANY($2::text[])",
            self.group_id,
            event_ids,
        )

    async def _route(self, conn: Any, record: ConsumerRecord[bytes, bytes], exc: Exception) -> str:
        """Where a failed record goes (the outcome): the DLQ, or the next retry tier."""
        if isinstance(exc, EventDecodeError):
            return await self._undecodable(conn, record, exc)
        if isinstance(exc, PermanentError):
            return await self._failures.dead_letter(conn, record, str(exc.reason), error_message(exc))
        if isinstance(exc, TransientError):
            return await self._failures.retry(conn, record, error_message(exc))
        # a bug: never lost, never retried forever
        log.error("handler_error", topic=record.topic, offset=record.offset, exc_info=exc)
        return await self._failures.dead_letter(
            conn, record, Reason.HANDLER_ERROR, f"{type(exc).__name__}: {exc}"
        )

    async def _undecodable(
        self, conn: Any, record: ConsumerRecord[bytes, bytes], exc: EventDecodeError
    ) -> str:
        """A record this consumer cannot read is a dead letter, except, in a migration window, the twin of
        an event that reaches it in the window's oldest major, which it reads: that one is skipped."""
        if self._sibling_types and isinstance(exc, UnsupportedType) and record.topic in self._shared:
            if _envelope_type(record.value) in self._sibling_types:
                return "sibling_skipped"  # another group of the service retries or replays it
        if self.migrations and isinstance(exc, UnsupportedType):
            ce_type = _envelope_type(record.value)
            if ce_type is not None and self.migrations.is_twin(ce_type, self._accept):
                log.info("migration_twin_skipped", ce_type=ce_type, topic=record.topic, offset=record.offset)
                return "twin_skipped"
        return await self._failures.dead_letter(conn, record, exc.reason, error_message(exc))

    async def _handle_fast(
        self, conn: Any, ctx: HandlerContext, decoded: str | EventDecodeError, fresh: set[str]
    ) -> str:
        if isinstance(decoded, EventDecodeError):
            return await self._undecodable(conn, ctx.record, decoded)
        if decoded not in fresh:
            return "duplicate"
        fresh.discard(decoded)  # the same id twice in one batch: the second is a duplicate
        if ctx.envelope is not None:
            e = ctx.envelope
            bind_event(e.id, e.subject, e.tenantid, _trace_id(e.traceparent))
        try:
            await self._dispatch(ctx)
        except (*_DB_DOWN, asyncpg.TransactionRollbackError):
            raise
        except Exception:
            raise _Isolate from None
        finally:
            unbind_event()
        return "processed"

    async def _claim_many(self, conn: Any, event_ids: list[str]) -> set[str]:
        if not event_ids:
            return set()
        rows = await conn.fetch(
            "INSERT INTO inbox(consumer_group, event_id) SELECT $1, unnest($2::text[])"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            self.group_id,
            event_ids,
        )
        return {r["event_id"] for r in rows}

    def _split_due(self, records: list[ConsumerRecord[bytes, bytes]]) -> tuple[list[Any], Any]:
        now_ms = time.time() * 1000
        for i, record in enumerate(records):
            if record.topic in self._retry_topics and not_before(record) * 1000 > now_ms:
                return records[:i], record
        return records, None

    def _resume_due(self) -> None:
        if not self._paused_until or self._consumer is None:
            return
        now = time.time()
        for tp, until in list(self._paused_until.items()):
            if until <= now:
                self._consumer.resume(tp)
                del self._paused_until[tp]

    # -- one record --------------------------------------------------------------------------------

    async def _process_record(self, conn: Any, record: ConsumerRecord[bytes, bytes]) -> _Outcome:
        """The isolated path: one savepoint per record, so a failure leaves its neighbours intact."""
        started = time.perf_counter()
        ctx = HandlerContext(conn=conn, service=self.service, record=record, migrations=self.migrations)
        outcome = "processed"
        try:
            async with conn.transaction():
                event_id = self._decode(ctx)
                if not await self._claim(conn, event_id):
                    outcome = "duplicate"
                else:
                    await self._dispatch(ctx)
                    if ctx.emitted:
                        await enqueue_encoded(conn, ctx.emitted)
        except (*_DB_DOWN, asyncpg.TransactionRollbackError):
            raise
        except Exception as exc:
            outcome = await self._route(conn, record, exc)
        finally:
            unbind_event()
        return record.topic, outcome, time.perf_counter() - started

    def _decode(self, ctx: HandlerContext, *, bind: bool = True) -> str:
        record = ctx.record
        if self._raw_handler is not None:
            # The timestamp too: a broker that lost its log (Tansu restarted, a topic re-created) hands
            # the same offsets out again, to other records, which an offset alone would take for repeats.
            return f"{record.topic}:{record.partition}:{record.offset}:{record.timestamp}"
        envelope, payload = decode_event(record.value, self._accept)
        if self._read_as and envelope.type in self._read_as:  # a stored older major: upcast it
            envelope, payload = upcast_event(envelope, payload, self._read_as[envelope.type])
        ctx.envelope = envelope
        ctx.payload = payload
        if bind:
            bind_event(envelope.id, envelope.subject, envelope.tenantid, _trace_id(envelope.traceparent))
        return envelope.id

    async def _claim(self, conn: Any, event_id: str) -> bool:
        inserted = await conn.fetchval(
            "INSERT INTO inbox(consumer_group, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
            self.group_id,
            event_id,
        )
        return inserted is not None

    async def _dispatch(self, ctx: HandlerContext) -> None:
        if self._raw_handler is not None:
            await self._raw_handler(ctx)
            return
        assert ctx.envelope is not None
        await self._handlers[ctx.envelope.type](ctx, ctx.envelope, ctx.payload)


def _trace_id(traceparent: str | None) -> str | None:
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 else None


def _envelope_type(value: bytes | None) -> str | None:
    """The ``type`` of a record decode_event rejected as unsupported (so its envelope is valid)."""
    try:
        return Envelope.model_validate_json(value or b"").type
    except ValueError:
        return None


def _event_id(ctx: HandlerContext) -> str:
    assert ctx.envelope is not None  # a batch handler only gets decoded records
    return ctx.envelope.id
