"""The four integration-health signals, gathered live from the services.

1. API availability: each service's ``/readyz``, and 1 − the share of 5xx answers
   (``rastro_http_requests_total``).
2. Webhook success rate: ``rastro_webhook_attempts_total{outcome="delivered"}`` out of all attempts.
3. Queue: ``rastro_consumer_lag`` (records behind the log end) + ``rastro_outbox_pending``.
4. DLQ size and top-5 errors: ``/v1/dead-letters/stats`` with the user's key, so a tenant key counts
   its own tenant's dead letters only.

Signals 1–3 come from ``/metrics``, which describes the whole system and no tenant's data; every
signed-in user sees them.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from rastro_cli.console.health_signals import (
    CounterHistory,
    Ratio,
    Sample,
    Scrape,
    availability,
    gauge_sum,
    parse_metrics,
    webhook_success,
)
from rastro_cli.console.upstream import ServiceApi

__all__ = ["SERVICES", "HealthReport", "ServiceHealth", "gather_health"]

SERVICES = ("ingest", "normalization", "eta", "notification", "dlq-replay")
TOP_ERRORS = 5
QUEUE_WARN, QUEUE_BAD = 1_000, 10_000
DLQ_BAD = 1_000


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    ready: bool | None
    """None: the service did not answer at all."""
    readiness: dict[str, Any]
    availability: Ratio
    lag: float
    outbox: float
    scraped: bool


@dataclass(frozen=True)
class HealthReport:
    services: list[ServiceHealth]
    availability: Ratio
    webhooks: Ratio
    lag: float
    outbox: float
    dlq_total: int | None
    top_errors: list[tuple[str, int]] = field(default_factory=list)
    dlq_problem: str | None = None
    at: float = 0.0

    @property
    def ready_count(self) -> int:
        return sum(1 for s in self.services if s.ready)

    @property
    def queue(self) -> float:
        return self.lag + self.outbox

    @property
    def tones(self) -> dict[str, str]:
        """``ok``, ``warn``, ``bad`` or ``none`` (no number) per signal, for the page's colours."""
        all_ready = self.ready_count == len(self.services)
        return {
            "availability": _tone(self.availability.value, 0.99, 0.95) if all_ready else "bad",
            "webhooks": _tone(self.webhooks.value, 0.95, 0.80),
            "queue": _tone(-self.queue, -QUEUE_WARN, -QUEUE_BAD),
            "dlq": "none" if self.dlq_total is None else _tone(-self.dlq_total, 0, -DLQ_BAD),
        }


def _tone(value: float | None, warn_below: float, bad_below: float) -> str:
    if value is None:
        return "none"
    return "bad" if value < bad_below else "warn" if value < warn_below else "ok"


async def gather_health(
    api: ServiceApi, history: CounterHistory, key: str, tenant_params: dict[str, str]
) -> HealthReport:
    params = {**tenant_params, "group_by": "reason", "top": str(TOP_ERRORS)}
    metrics, ready, dlq = await asyncio.gather(
        asyncio.gather(*(api.text(s, "/metrics") for s in SERVICES)),
        asyncio.gather(*(api.text(s, "/readyz") for s in SERVICES)),
        api.call("GET", "dlq-replay", "/v1/dead-letters/stats", key, params),
    )
    now = time.time()
    scrapes: dict[str, Scrape] = {}
    for name, answer in zip(SERVICES, metrics, strict=True):
        samples = _samples(answer)
        scrapes[name] = (samples, history.record(name, now, samples) if samples else None)
    services = [
        _service_health(name, scrapes[name], readiness, now)
        for name, readiness in zip(SERVICES, ready, strict=True)
    ]
    groups = dlq.body.get("groups", []) if dlq.ok and isinstance(dlq.body, dict) else []
    return HealthReport(
        services=services,
        availability=availability(list(scrapes.values()), now),
        webhooks=webhook_success(list(scrapes.values()), now),
        lag=sum(s.lag for s in services),
        outbox=sum(s.outbox for s in services),
        dlq_total=int(dlq.body["total"]) if dlq.ok and isinstance(dlq.body, dict) else None,
        top_errors=[(str(g.get("key")), int(g.get("count", 0))) for g in groups[:TOP_ERRORS]],
        dlq_problem=None if dlq.ok else dlq.detail,
        at=now,
    )


def _samples(answer: tuple[int, str] | None) -> list[Sample]:
    if answer is None or answer[0] != 200:
        return []
    try:
        return parse_metrics(answer[1])
    except ValueError:  # not Prometheus text: treat as not scraped
        return []


def _service_health(
    name: str, scrape: Scrape, readiness: tuple[int, str] | None, now: float
) -> ServiceHealth:
    samples, _ = scrape
    checks: dict[str, Any] = {}
    if readiness is not None:
        try:
            body = json.loads(readiness[1])
            checks = body.get("checks", {}) if isinstance(body, dict) else {}
        except ValueError:
            checks = {}
    return ServiceHealth(
        name=name,
        ready=None if readiness is None else readiness[0] == 200,
        readiness=checks,
        availability=availability([scrape], now),
        lag=gauge_sum(samples, "rastro_consumer_lag"),
        outbox=gauge_sum(samples, "rastro_outbox_pending"),
        scraped=bool(samples),
    )
