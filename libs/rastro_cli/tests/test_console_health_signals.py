"""The health page's arithmetic: Prometheus text in, availability / webhook success / queue out."""

from __future__ import annotations

import pytest

from rastro_cli.console.health_signals import (
    CounterHistory,
    Sample,
    availability,
    gauge_sum,
    parse_metrics,
    span_label,
    webhook_success,
)

pytestmark = pytest.mark.unit

EXPOSITION = """\
# HELP rastro_http_requests_total HTTP requests
# TYPE rastro_http_requests_total counter
rastro_http_requests_total{code="200",route="/v1/shipments",service="normalization"} 90.0
rastro_http_requests_total{code="503",route="/v1/shipments",service="normalization"} 10.0
rastro_http_requests_total{code="200",route="/metrics",service="normalization"} 500.0
rastro_http_requests_total{code="200",route="/readyz",service="normalization"} 300.0
# HELP rastro_http_requests_created HTTP requests
# TYPE rastro_http_requests_created gauge
rastro_http_requests_created{code="200",route="/v1/shipments",service="normalization"} 1.7e9
# HELP rastro_webhook_attempts_total Webhook delivery attempts
# TYPE rastro_webhook_attempts_total counter
rastro_webhook_attempts_total{outcome="delivered"} 45.0
rastro_webhook_attempts_total{outcome="retry"} 5.0
# HELP rastro_consumer_lag Records behind the log end
# TYPE rastro_consumer_lag gauge
rastro_consumer_lag{partition="0",service="normalization",topic="rastro.tracking.raw.v1"} 7.0
rastro_consumer_lag{partition="1",service="normalization",topic="rastro.tracking.raw.v1"} 5.0
# HELP rastro_outbox_pending Outbox rows not yet published
# TYPE rastro_outbox_pending gauge
rastro_outbox_pending{service="normalization"} 3.0
"""


def counters(ok: float, failed: float, delivered: float = 0, retried: float = 0) -> list[Sample]:
    route = "/v1/events"
    return [
        Sample("rastro_http_requests_total", {"code": "202", "route": route, "service": "ingest"}, ok),
        Sample("rastro_http_requests_total", {"code": "500", "route": route, "service": "ingest"}, failed),
        Sample("rastro_webhook_attempts_total", {"outcome": "delivered"}, delivered),
        Sample("rastro_webhook_attempts_total", {"outcome": "retry"}, retried),
    ]


def test_lifetime_ratios_leave_probes_and_scrapes_out() -> None:
    samples = parse_metrics(EXPOSITION)
    api = availability([(samples, None)], now=0)
    assert (api.good, api.total, api.window) == (90, 100, "since start")
    assert api.value == pytest.approx(0.9)
    hooks = webhook_success([(samples, None)], now=0)
    assert hooks.value == pytest.approx(0.9) and hooks.total == 50
    assert gauge_sum(samples, "rastro_consumer_lag") == 12
    assert gauge_sum(samples, "rastro_outbox_pending") == 3


def test_with_history_a_ratio_covers_the_window_only() -> None:
    history = CounterHistory(window_s=300)
    assert history.record("ingest", 1000, counters(ok=1000, failed=0)) is None  # nothing to compare yet
    later = counters(ok=1090, failed=10, delivered=8, retried=2)
    baseline = history.record("ingest", 1400, later)
    ratio = availability([(later, baseline)], now=1400)
    # Lifetime would say 99 %; the last 400 s say 90 %.
    assert (ratio.good, ratio.total, ratio.window) == (90, 100, "last 7 min")
    assert webhook_success([(later, baseline)], now=1400).value == pytest.approx(0.8)


def test_a_restarted_service_counts_from_zero_again() -> None:
    history = CounterHistory(window_s=60)
    history.record("eta", 0, counters(ok=5000, failed=100))
    restarted = counters(ok=40, failed=10)  # lower than before: the process started over
    baseline = history.record("eta", 120, restarted)
    ratio = availability([(restarted, baseline)], now=120)
    assert (ratio.good, ratio.total) == (40, 50)


def test_no_traffic_in_the_window_falls_back_to_lifetime_totals() -> None:
    history = CounterHistory(window_s=60)
    history.record("ingest", 0, counters(ok=10, failed=10))
    same = counters(ok=10, failed=10)
    ratio = availability([(same, history.record("ingest", 120, same))], now=120)
    assert (ratio.value, ratio.window) == (0.5, "since start")
    assert webhook_success([(same, None)], now=120).value is None  # no attempts at all: no number


def test_the_baseline_is_the_newest_scrape_at_least_a_window_old() -> None:
    history = CounterHistory(window_s=100)
    for at, ok in ((0, 10), (50, 20), (90, 30), (120, 40)):
        history.record("ingest", at, counters(ok=ok, failed=0))
    # At 195 the scrapes at 0, 50 and 90 are 100 s old or more: the one at 90 is the baseline.
    baseline = history.record("ingest", 195, counters(ok=50, failed=0))
    assert baseline is not None and baseline.at == 90
    # Young history: compare with the oldest scrape kept, and say how long that covers.
    young = CounterHistory(window_s=300)
    young.record("ingest", 0, counters(ok=10, failed=0))
    first = young.record("ingest", 30, counters(ok=20, failed=0))
    assert first is not None and first.at == 0
    assert availability([(counters(ok=20, failed=0), first)], now=30).window == "last 30 s"


def test_several_services_add_up_over_one_window() -> None:
    history = CounterHistory(window_s=10)
    history.record("a", 0, counters(ok=0, failed=0))
    history.record("b", 0, counters(ok=0, failed=0))
    a, b = counters(ok=30, failed=0), counters(ok=60, failed=10)
    ratio = availability([(a, history.record("a", 20, a)), (b, history.record("b", 20, b))], now=20)
    assert (ratio.good, ratio.total) == (90, 100)


@pytest.mark.parametrize(("seconds", "label"), [(0.2, "last 1 s"), (45, "last 45 s"), (300, "last 5 min")])
def test_span_labels(seconds: float, label: str) -> None:
    assert span_label(seconds) == label
