"""The health page's numbers, from the services' Prometheus text (DESIGN §9 names). Pure: no I/O.

Counters only ever grow while a process lives, so a ratio of two totals says "since the service
started". The console keeps the last few minutes of scrapes and reports ratios over that window
instead; a counter that went down (the process restarted) counts from zero again, as Prometheus'
``increase()`` does. With no traffic in the window the ratio falls back to the lifetime totals.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "OPS_ROUTES",
    "CounterHistory",
    "Ratio",
    "Sample",
    "Scrape",
    "SeriesKey",
    "Snapshot",
    "availability",
    "gauge_sum",
    "parse_metrics",
    "span_label",
    "webhook_success",
]

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
"""A series: sample name and its sorted labels."""
HTTP_REQUESTS = "rastro_http_requests_total"
WEBHOOK_ATTEMPTS = "rastro_webhook_attempts_total"
COUNTERS = (HTTP_REQUESTS, WEBHOOK_ATTEMPTS)
OPS_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})
"""Probes and scrapes succeed by themselves: they would make any API look available."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float

    @property
    def key(self) -> SeriesKey:
        return self.name, tuple(sorted(self.labels.items()))


def parse_metrics(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition (``_total`` names kept as exposed)."""
    return [
        Sample(s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


@dataclass(frozen=True)
class Ratio:
    good: float
    total: float
    window: str
    """What the numbers cover: ``last 5 min`` or ``since start``."""

    @property
    def value(self) -> float | None:
        return self.good / self.total if self.total > 0 else None


@dataclass(frozen=True)
class Snapshot:
    at: float
    counters: Mapping[SeriesKey, float]


class CounterHistory:
    """Recent counter values per service, so ratios can cover the last ``window_s`` seconds."""

    def __init__(self, window_s: float, max_snapshots: int = 400) -> None:
        self.window_s = window_s
        self._snapshots: dict[str, deque[Snapshot]] = {}
        self._max = max_snapshots

    def record(self, service: str, at: float, samples: Iterable[Sample]) -> Snapshot | None:
        """Keep this scrape; return the baseline to compare it with (None: no earlier scrape)."""
        snapshots = self._snapshots.setdefault(service, deque(maxlen=self._max))
        baseline = self._baseline(snapshots, at)
        snapshots.append(Snapshot(at, {s.key: s.value for s in samples if s.name in COUNTERS}))
        while len(snapshots) > 1 and at - snapshots[1].at >= self.window_s:
            snapshots.popleft()  # the second oldest is old enough to be the next baseline
        return baseline

    def _baseline(self, snapshots: deque[Snapshot], at: float) -> Snapshot | None:
        old_enough = [s for s in snapshots if at - s.at >= self.window_s]
        if old_enough:
            return old_enough[-1]
        return snapshots[0] if snapshots else None


Scrape = tuple[list[Sample], Snapshot | None]
"""One service's samples now, and its baseline (None: compare with zero, i.e. since it started)."""


def _increase(scrapes: Iterable[Scrape], where: Callable[[Sample], bool], lifetime: bool) -> float:
    total = 0.0
    for samples, baseline in scrapes:
        counters = baseline.counters if baseline is not None and not lifetime else {}
        for sample in samples:
            if where(sample):
                before = counters.get(sample.key, 0.0)
                total += sample.value - before if sample.value >= before else sample.value
    return total


def span_label(seconds: float) -> str:
    if seconds >= 90:
        return f"last {seconds / 60:.0f} min"
    return f"last {max(seconds, 1):.0f} s"


def _windowed(
    scrapes: list[Scrape], now: float, good: Callable[[Sample], bool], counted: Callable[[Sample], bool]
) -> Ratio:
    def both(s: Sample) -> bool:
        return counted(s) and good(s)

    ages = [now - baseline.at for _, baseline in scrapes if baseline is not None]
    if ages:
        total = _increase(scrapes, counted, lifetime=False)
        if total > 0:
            return Ratio(_increase(scrapes, both, lifetime=False), total, span_label(max(ages)))
    return Ratio(
        _increase(scrapes, both, lifetime=True), _increase(scrapes, counted, lifetime=True), "since start"
    )


def availability(scrapes: list[Scrape], now: float) -> Ratio:
    """Answers that were not 5xx, out of every API request (probes and scrapes left out)."""
    return _windowed(
        scrapes,
        now,
        good=lambda s: not s.labels.get("code", "").startswith("5"),
        counted=lambda s: s.name == HTTP_REQUESTS and s.labels.get("route") not in OPS_ROUTES,
    )


def webhook_success(scrapes: list[Scrape], now: float) -> Ratio:
    """Webhook attempts the endpoint accepted (outcome ``delivered``), out of every attempt."""
    return _windowed(
        scrapes,
        now,
        good=lambda s: s.labels.get("outcome") == "delivered",
        counted=lambda s: s.name == WEBHOOK_ATTEMPTS,
    )


def gauge_sum(samples: Iterable[Sample], name: str) -> float:
    return sum(s.value for s in samples if s.name == name)
