"""The polling loop: every tick, claim the due shipments, ask each carrier in batches (through its
gate: token bucket, retries, circuit breaker), parse with the same pure parser as pushes, and record
the new events in the outbox — all in one transaction per batch."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge

from rastro_ingest.adapters.carriers.connections import Connection, fetch_connection
from rastro_ingest.adapters.carriers.models import (
    CarrierClient,
    CarrierError,
    CarrierRejected,
    CircuitOpen,
    ParsedShipment,
    ParseSettings,
)
from rastro_ingest.adapters.carriers.registry import CARRIERS
from rastro_ingest.polling.carrier_gate import CarrierGate, RetryPolicy
from rastro_ingest.polling.circuit_breaker import CircuitBreaker
from rastro_ingest.polling.token_bucket import TokenBucket
from rastro_ingest.polling.tracked import POLLABLE, claim_due, postpone, record_carrier_events
from rastro_kit.logs import get_logger

__all__ = ["CARRIER_CIRCUIT_OPEN", "CARRIER_POLLS", "Poller", "export_circuit_states", "poll_carriers"]

log = get_logger(__name__)
_HEADROOM = 0.9
CARRIER_POLLS = Counter(
    "rastro_carrier_polls_total", "Carrier tracking calls by outcome", ["carrier", "outcome"]
)
CARRIER_CIRCUIT_OPEN = Gauge(
    "rastro_carrier_circuit_open",
    "1 while a carrier's circuit breaker is not closed (open, or half-open awaiting its trial call)",
    ["carrier"],
)


def export_circuit_states(gates: Mapping[str, CarrierGate]) -> None:
    for carrier, gate in gates.items():
        CARRIER_CIRCUIT_OPEN.labels(carrier).set(gate.breaker.state != "closed")


class Poller:
    def __init__(self, pool: Any, settings: Any) -> None:
        self._pool, self._settings = pool, settings
        rates = settings.carrier_rate_limits_per_s
        retry = RetryPolicy(
            settings.carrier_retry_attempts, settings.carrier_retry_base_s, settings.carrier_retry_max_s
        )
        # Paced at 90 % of the carrier's limit: requests leave evenly spaced but arrive with network
        # jitter, and a carrier counting per second must never see one too many.
        self.buckets = {
            c: TokenBucket(_HEADROOM * rates.get(c, settings.carrier_default_rate_per_s)) for c in POLLABLE
        }
        breakers = {
            c: CircuitBreaker(settings.carrier_breaker_failures, settings.carrier_breaker_reset_s)
            for c in POLLABLE
        }
        self.gates = {c: CarrierGate(c, breakers[c], retry) for c in POLLABLE}
        self._clients: dict[str, tuple[Any, CarrierClient]] = {}

    async def run(self) -> None:
        try:
            while True:
                await self.poll_once()
                await asyncio.sleep(self._settings.polling_tick_s)
        finally:
            await self.close()

    async def close(self) -> None:
        for _, client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def poll_once(self) -> int:
        """One round over every due shipment; the number of shipments asked about."""
        export_circuit_states(self.gates)
        carriers = [c for c, gate in self.gates.items() if gate.breaker.state != "open"]
        if not carriers:
            return 0
        async with self._pool.acquire() as conn:
            claimed = await claim_due(
                conn,
                now=datetime.now(UTC),
                limit=self._settings.polling_claim_limit,
                lease_s=self._settings.polling_lease_s,
                carriers=carriers,
            )
            by_connection: dict[str, list[str]] = defaultdict(list)
            for row in claimed:
                by_connection[row["connection_id"]].append(row["tracking_number"])
            connections = [await fetch_connection(conn, cid) for cid in by_connection]
        per_carrier: dict[str, list[tuple[Connection, list[str]]]] = defaultdict(list)
        for connection in connections:
            if connection is not None:
                numbers = by_connection[connection.id]
                for i in range(0, len(numbers), connection.batch_size):
                    per_carrier[connection.carrier].append(
                        (connection, numbers[i : i + connection.batch_size])
                    )
        await asyncio.gather(*(self._poll_carrier(batches) for batches in per_carrier.values()))
        return len(claimed)

    async def _poll_carrier(self, batches: Sequence[tuple[Connection, list[str]]]) -> None:
        for connection, numbers in batches:  # one carrier's batches in turn: its bucket paces them
            await self._poll_batch(connection, numbers)

    async def _poll_batch(self, connection: Connection, numbers: list[str]) -> None:
        gate, adapter = self.gates[connection.carrier], CARRIERS[connection.carrier]
        client = await self._client(connection)
        try:
            payload = await gate.call(lambda: client.track(numbers))
        except CarrierError as exc:
            await self._postpone(connection, numbers, exc, gate)
            return
        CARRIER_POLLS.labels(connection.carrier, "ok").inc()
        shipments, messages = adapter.parse(payload, ParseSettings(connection.carrier))
        found = {s.tracking_number: s for s in shipments}
        answers = [found.get(n, ParsedShipment(n)) for n in numbers]
        async with self._pool.acquire() as conn, conn.transaction():
            recorded = await record_carrier_events(
                conn, connection, answers, now=datetime.now(UTC), polled=True
            )
        log.info(
            "carrier_polled",
            carrier=connection.carrier,
            tenant=connection.tenant_id,
            shipments=len(numbers),
            new_events=sum(r.new for r in recorded),
            messages=len(messages),
        )

    async def _postpone(
        self, connection: Connection, numbers: list[str], exc: CarrierError, gate: CarrierGate
    ) -> None:
        if isinstance(exc, CircuitOpen):
            outcome, delay = "circuit_open", gate.breaker.seconds_until_trial()
        elif isinstance(exc, CarrierRejected):
            outcome, delay = "rejected", float(connection.poll_interval_s)
        else:
            outcome, delay = "unavailable", self._settings.polling_failure_backoff_s
        CARRIER_POLLS.labels(connection.carrier, outcome).inc()
        log.warning(
            "carrier_poll_failed",
            carrier=connection.carrier,
            tenant=connection.tenant_id,
            outcome=outcome,
            error=str(exc),
            shipments=len(numbers),
            retry_in_s=delay,
        )
        async with self._pool.acquire() as conn:
            await postpone(conn, connection.id, numbers, until=datetime.now(UTC) + timedelta(seconds=delay))

    async def _client(self, connection: Connection) -> CarrierClient:
        adapter = CARRIERS[connection.carrier]
        base_url = connection.base_url or adapter.default_base_url or ""
        fingerprint = (base_url, tuple(sorted(connection.credentials.items())))
        cached = self._clients.get(connection.id)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        if cached is not None:  # the connection was changed: its old client goes
            await cached[1].aclose()
        assert adapter.client is not None  # only pollable carriers are claimed
        client = adapter.client(
            base_url,
            connection.credentials,
            self._settings.carrier_timeout_s,
            self.buckets[connection.carrier].acquire,
        )
        self._clients[connection.id] = (fingerprint, client)
        return client


async def poll_carriers(runtime: Any) -> None:
    """The ingest background task (``RASTRO_INGEST_POLLING_ENABLED=false`` turns it off)."""
    if not runtime.settings.polling_enabled:
        return
    poller = Poller(runtime.pool, runtime.settings)
    runtime.state["poller"] = poller
    await poller.run()
