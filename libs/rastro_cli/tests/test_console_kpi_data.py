"""KPI periods and chart series, from the services' answers (pure), and one chart drawn for real."""

from __future__ import annotations

from datetime import date

import pytest

from rastro_cli.console.charts import render_chart_svg
from rastro_cli.console.kpi_data import Bucket, Chart, _eta_errors, _on_time, _trend, buckets
from rastro_cli.console.upstream import Answer

pytestmark = pytest.mark.unit
MONDAY_1ST_DEC = date(2026, 11, 30)  # a Monday


def test_buckets_are_calendar_periods_up_to_today_oldest_first() -> None:
    days = buckets("day", date(2026, 12, 2), 3)
    assert [(b.first, b.last) for b in days] == [
        (date(2026, 11, 30),) * 2,
        (date(2026, 12, 1),) * 2,
        (date(2026, 12, 2),) * 2,
    ]
    weeks = buckets("week", date(2026, 12, 2), 2)  # a Wednesday
    assert [(b.first, b.last) for b in weeks] == [
        (date(2026, 11, 23), date(2026, 11, 29)),
        (date(2026, 11, 30), date(2026, 12, 2)),  # this week, so far
    ]
    months = buckets("month", date(2026, 1, 15), 3)
    assert [b.label for b in months] == ["Nov 2025", "Dec 2025", "Jan 2026"]
    assert months[0] == Bucket("Nov 2025", date(2025, 11, 1), date(2025, 11, 30))
    assert len(buckets("week", MONDAY_1ST_DEC)) == 8 and len(buckets("month", MONDAY_1ST_DEC)) == 6


def kpis(*items: dict[str, object]) -> Answer:
    return Answer(200, {"group_by": "carrier", "items": list(items)})


def test_a_trend_has_one_line_per_carrier_and_zero_where_a_period_has_none() -> None:
    periods = buckets("day", date(2026, 12, 2), 2)
    answers = [
        kpis({"key": "correios", "shipments": 4}),
        kpis({"key": "correios", "shipments": 6}, {"key": "jadlog", "shipments": 1}),
    ]
    chart = _trend("trend", "T", periods, answers, "shipments", "no shipments")
    assert chart.series == {"correios": [4.0, 6.0], "jadlog": [0.0, 1.0]}  # none that day: zero
    assert chart.points == 4 and chart.problem is None and not chart.percent
    rates = _trend("on-time-trend", "T", periods, answers, "on_time_rate", "needs promises")
    assert rates.series == {"correios": [None, None], "jadlog": [None, None]} and rates.points == 0


def test_a_failed_call_leaves_the_chart_empty_with_the_reason() -> None:
    periods = buckets("day", date(2026, 12, 2), 1)
    gone = Answer(404, {"detail": "Not Found"}, "Not Found")
    chart = _trend("trend", "T", periods, [gone], "shipments", "no shipments")
    assert chart.points == 0 and chart.problem == "the service does not serve this report (404)"
    refused = Answer(403, {}, "This API key lacks the scope 'shipments:read'.")
    assert _on_time(refused, kpis()).problem == "This API key lacks the scope 'shipments:read'."


def test_on_time_puts_the_order_promise_beside_the_eta_promise() -> None:
    chart = _on_time(
        kpis({"key": "correios", "on_time_rate": 0.8}, {"key": "dhl", "on_time_rate": None}),
        kpis({"key": "correios", "on_time_share": 0.95, "deliveries": 20}),
    )
    assert chart.x == ["correios", "dhl"] and chart.percent
    assert list(chart.series.values()) == [[0.8, None], [0.95, None]]


def test_an_operators_eta_rows_per_tenant_add_up_weighted_by_deliveries() -> None:
    eta = kpis(
        {"tenant": "a", "key": "correios", "on_time_share": 1.0, "deliveries": 30},
        {"tenant": "b", "key": "correios", "on_time_share": 0.5, "deliveries": 10},
    )
    assert _on_time(kpis(), eta).series["by Rastro's promise date (ETA P90)"] == [pytest.approx(0.875)]


def test_eta_errors_become_a_histogram_per_carrier_on_one_day_axis() -> None:
    errors = Answer(
        200,
        {
            "items": [
                {
                    "carrier": "correios",
                    "buckets": [{"error_days": -1, "count": 2}, {"error_days": 0, "count": 9}],
                },
                {"carrier": "jadlog", "buckets": [{"error_days": 2, "count": 1}]},
            ]
        },
    )
    chart = _eta_errors(errors)
    assert chart.x == ["-3", "-2", "-1", "0", "+1", "+2", "+3"]  # no holes, and ±3 days at least
    assert chart.series == {
        "correios": [0.0, 0.0, 2.0, 9.0, 0.0, 0.0, 0.0],
        "jadlog": [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    }


def test_eta_errors_of_several_tenants_add_up_and_the_clamped_ends_say_so() -> None:
    errors = Answer(
        200,
        {
            "clamp_days": 15,
            "items": [
                {"tenant": "a", "carrier": "correios", "buckets": [{"error_days": -15, "count": 1}]},
                {"tenant": "b", "carrier": "correios", "buckets": [{"error_days": -15, "count": 2}]},
                {"tenant": "b", "carrier": "correios", "buckets": [{"error_days": 15, "count": 4}]},
            ],
        },
    )
    chart = _eta_errors(errors)
    assert (chart.x[0], chart.x[15], chart.x[-1]) == ("≤-15", "0", "≥+15") and len(chart.x) == 31
    counts = [c or 0.0 for c in chart.series["correios"]]
    assert (counts[0], counts[-1], sum(counts)) == (3, 4, 7)


def test_a_chart_is_drawn_as_an_inline_svg_with_text_labels() -> None:
    chart = Chart("t", "T", "bar", ["correios", "dhl"], {"on time": [0.5, 0.9]}, "share", percent=True)
    svg = render_chart_svg(chart)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "correios" in svg and "100%" in svg  # tick labels as <text>, the axis in percent
